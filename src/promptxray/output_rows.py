"""Heatmap rows: target tokens placed on the output text and grouped into its words,
sentences or lines.

A heatmap's rows are the target's tokens; a person reads the output in words. Grouping
them needs only the output text, the token pieces and the method's rule, so it lives
here, beside the result rather than inside it (`Attribution.matrix_rows` calls it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .aggregation import Aggregation, combine
from .errors import InvalidParameterError
from .segments import locate_token, segment

RowsBy = Literal["token", "word", "sentence", "line"]
ROW_GROUPINGS: tuple[str, ...] = ("token", "word", "sentence", "line")
Span = tuple[int, int]


@dataclass(frozen=True)
class MatrixRows:
    """The matrix with its rows grouped: one label, target-character span and token list a row."""

    by: str
    labels: list[str]
    spans: list[Span]  # in `Attribution.target`, stripped of surrounding space
    tokens: list[list[int]]  # target-token indices each row combines
    matrix: list[list[float]]


def row_rule(aggregation: Aggregation | str) -> Aggregation:
    """How matrix rows (target tokens) combine into an output word, sentence or line.

    Every method scores target tokens one by one (teacher forcing), so a method's
    rule for *columns* says nothing about rows; this is its reading for rows:

    - `SUM` (grad_x_input, integrated_gradients): a row is the attribution of
      log p(y_t); log p(group) is the sum of its tokens' log-probs and these
      attributions are linear in that objective, so a group's row is the exact sum.
    - `FIXED` (leave_one_out and other masking methods): a row is the drop of
      log p(y_t) when a unit is masked; drops add over target tokens (a unit's
      score is its column sum), so summing rows is exact too. FIXED restricts
      the *units*, never the target tokens.
    - `NORM` (grad_norm): a row holds gradient norms ||d log p(y_t)/dx_u||. The norm
      of a group's gradient needs the vectors, which are not kept, so rows combine
      like columns do: sqrt of the sum of squares (the norm of the rows' gradients
      stacked), not the norm of their sum (which can be smaller, never larger than
      their plain sum).
    """
    return Aggregation.NORM if aggregation == Aggregation.NORM else Aggregation.SUM


def check_rows_by(by: str) -> None:
    if by not in ROW_GROUPINGS:
        raise InvalidParameterError(
            f"Group heatmap rows by one of {', '.join(ROW_GROUPINGS)}, not {by!r}.", param="rows"
        )


def token_spans(text: str, pieces: list[str]) -> list[Span]:
    """Each token's character span in `text`, found by walking its pieces.

    Pieces are decoded one token at a time, so they concatenate to the text
    except where a character is split over tokens (a piece then decodes to
    U+FFFD). Such tokens share the stretch up to the next piece that is found
    again, so every token still gets a place and spans never go backwards.
    """
    spans: list[Span] = []
    pending = 0  # tokens not yet placed: they end where the next found piece starts
    cursor = 0
    for piece in pieces:
        where = _find_piece(text, piece, cursor)
        if where is None:
            pending += 1
            continue
        spans.extend([(cursor, where)] * pending)
        pending = 0
        spans.append((where, where + len(piece)))
        cursor = where + len(piece)
    spans.extend([(cursor, len(text))] * pending)
    return spans


def group_rows(
    target: str,
    target_pieces: list[str],
    row_pieces: list[str],
    matrix: list[list[float]],
    aggregation: Aggregation | str,
    by: RowsBy | str,
) -> MatrixRows:
    """`matrix`'s rows grouped into the target's words, sentences or lines.

    Segments come from the same segmenters as prompt units; a token joins the
    segment of its first visible character, as a prompt token joins its unit.
    Rows combine by `row_rule(aggregation)`; `token` keeps the matrix as it is.
    `target_pieces` place the rows on the text; `row_pieces` label token rows (a
    contrast's rows come after the target's: such a matrix stays at token rows).
    """
    check_rows_by(by)
    spans = token_spans(target, target_pieces)
    if len(spans) != len(matrix):  # rows we cannot place (a contrast's) stay tokens
        by, spans = "token", [(0, 0)] * len(matrix)
    groups = _row_groups(target, by, spans)
    rule = row_rule(aggregation)
    labels, group_spans, grouped = [], [], []
    for members in groups:
        span = _stripped(target, spans[members[0]][0], spans[members[-1]][1])
        group_spans.append(span)
        if by == "token":
            first = members[0]
            labels.append(row_pieces[first] if first < len(row_pieces) else str(first))
        else:
            labels.append(target[span[0] : span[1]])
        columns = zip(*(matrix[t] for t in members), strict=True)
        grouped.append([combine(rule, list(col)) for col in columns])
    return MatrixRows(by, labels, group_spans, groups, grouped)


def _stripped(text: str, start: int, end: int) -> Span:
    """A span without its surrounding whitespace (kept in place if all space)."""
    piece = text[start:end]
    if not piece.strip():
        return (start, end)
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    return (start + lead, end - trail)


def _row_groups(text: str, by: str, spans: list[Span]) -> list[list[int]]:
    """Target-token indices of each row group, in reading order."""
    if by == "token":
        return [[t] for t in range(len(spans))]
    segments = segment(text, by) if text.strip() else []
    if not segments:
        return [list(range(len(spans)))]
    groups: dict[int, list[int]] = {}
    for t, span in enumerate(spans):
        groups.setdefault(locate_token(segments, text, span), []).append(t)
    return [groups[k] for k in sorted(groups)]


def _find_piece(text: str, piece: str, cursor: int) -> int | None:
    """Where a token's piece sits at or just after `cursor`; None for an unplaceable piece.

    Looks only a few characters ahead, so a short piece ("a") is not matched far
    away after an unplaceable one; an empty piece sits at the cursor.
    """
    if not piece:
        return cursor
    if "\ufffd" in piece and "\ufffd" not in text:
        return None
    where = text.find(piece, cursor, cursor + len(piece) + 8)
    return None if where < 0 else where
