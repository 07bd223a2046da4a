"""Split text into units (words, sentences, ..., whole turns) that cover every character.

Units partition the text: whitespace between units belongs to the unit that
follows it (as in byte-level BPE, where " sky" is one token). Because every
character has exactly one unit, every token maps to exactly one unit and summing
token scores into units never loses or double-counts a score.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import UnknownGranularityError


class Granularity(StrEnum):
    TOKEN = "token"
    WORD = "word"
    SENTENCE = "sentence"
    LINE = "line"
    PARAGRAPH = "paragraph"
    TURN = "turn"
    REGEX = "regex"


GRANULARITIES = ("token", "word", "sentence", "line", "paragraph", "turn")

# The text a unit's span indexes into, by the unit's role and turn (`conversation.source_text`
# behind `Problem.role_text` and `Attribution.role_text`): roles repeat across turns.
SourceText = Callable[[str, int | None], str]

_CORE_PATTERNS = {
    "word": r"\S+",
    "line": r"[^\n]*\S[^\n]*",
    "paragraph": r"\S(?:[^\n]|\n(?![ \t]*\n))*",
}

_splitter_lock = threading.Lock()  # a pysbd Segmenter keeps state while it segments
_splitter: Any = None

# Characters pysbd uses internally as placeholders: in the input they make it drop or
# rewrite sentences ("I ☝ you. Go." comes back as just "Go."). Each is swapped for a
# neutral one-character stand-in before pysbd sees the text, so offsets do not move.
_PYSBD_PLACEHOLDERS = "∯♨☝ȸȹ∮☉☈☇☄☏ƪ♟♝♬♭ᓰᓱᓳᓴᓷᓸ✂⌬⎋"
_NEUTRALIZE = str.maketrans({c: "#" for c in _PYSBD_PLACEHOLDERS})


def _pysbd() -> Any:
    global _splitter
    if _splitter is None:
        import pysbd

        _splitter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return _splitter


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    """Sentences by pysbd (abbreviations, decimals, quotes, lists), never across a blank line.

    pysbd knows "Dr.", "p.m.", "e.g." and "3.14" are not sentence ends, which no
    short regex does. Paragraphs are split first, so a blank line always ends a
    sentence; within a paragraph pysbd decides, and it ends a sentence at every
    newline. pysbd's sentences are mapped back by their visible characters
    (whitespace may differ), searching forward from a cursor; text pysbd leaves
    out stays a unit of its own inside its paragraph. Spans are stripped.
    """
    spans: list[tuple[int, int]] = []
    for para in re.finditer(_CORE_PATTERNS["paragraph"], text):
        offset = para.start()
        body = para.group().translate(_NEUTRALIZE)
        where = [i for i, c in enumerate(body) if not c.isspace()]  # visible char -> offset
        visible = "".join(body[i] for i in where)
        with _splitter_lock:
            sentences = [sent.sent for sent in _pysbd().segment(body)]
        cursor = 0  # in `visible`
        for sent in sentences:
            key = "".join(sent.split())
            found = visible.find(key, cursor) if key else -1
            if found < 0:
                continue
            if found > cursor:  # pysbd skipped text: keep it as a unit
                spans.append((offset + where[cursor], offset + where[found - 1] + 1))
            cursor = found + len(key)
            spans.append((offset + where[found], offset + where[cursor - 1] + 1))
        if cursor < len(visible):
            spans.append((offset + where[cursor], offset + where[-1] + 1))
    return spans


@dataclass
class Unit:
    """A scored piece of the source: its text, who wrote it, where it sits, its tokens.

    `turn` is the index of the message it comes from (the final assistant turn for
    output before the target; None in results saved before turns existed) and
    `span` a character range in that turn's text: the message's content, or the
    output before the target. `tokens` index into the source-token list of the
    problem the method saw.
    """

    text: str
    role: str
    span: tuple[int, int] | None
    tokens: list[int]
    turn: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Unit:
        span = tuple(d["span"]) if d.get("span") is not None else None
        turn = d.get("turn")
        return cls(
            text=d["text"],
            role=d["role"],
            span=span,
            tokens=list(d["tokens"]),
            turn=int(turn) if turn is not None else None,
        )


@dataclass(frozen=True)
class Segment:
    """A unit of text: `span` covers its visible characters; `cover` also owns leading space."""

    span: tuple[int, int]
    cover: tuple[int, int]


def check_granularity(granularity: str, pattern: str | None = None) -> None:
    if granularity == "regex":
        if not pattern:
            raise UnknownGranularityError("Granularity 'regex' needs a pattern.", param="pattern")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise UnknownGranularityError(f"Bad regular expression {pattern!r}: {exc}") from exc
        return
    if granularity not in GRANULARITIES:
        raise UnknownGranularityError(
            f"Unknown granularity {granularity!r}; choose one of "
            f"{', '.join(GRANULARITIES + ('regex',))}."
        )


def segment(text: str, granularity: str, pattern: str | None = None) -> list[Segment]:
    """Segments of `text` at a granularity other than token (tokens come from the model)."""
    check_granularity(granularity, pattern)
    if granularity == "token":
        raise UnknownGranularityError("Token units come from the tokenizer, not from segment().")
    if granularity == "sentence":
        matches = _sentence_spans(text)
    elif granularity == "turn":  # the whole text of one turn is one unit
        matches = [_strip_span(text, 0, len(text))] if text.strip() else []
    else:
        core = re.compile(pattern if granularity == "regex" else _CORE_PATTERNS[granularity])
        matches = [(m.start(), m.end()) for m in core.finditer(text) if m.end() > m.start()]
    cores: list[tuple[int, int]] = []
    cursor = 0
    for start, end in matches:
        gap = text[cursor:start]
        if gap.strip():
            # Text no match claims (only possible with a custom regex) is a unit too.
            cores.append(_strip_span(text, cursor, start))
        cores.append((start, end))
        cursor = end
    tail = text[cursor:]
    if tail.strip():
        cores.append(_strip_span(text, cursor, len(text)))
    if not cores:
        return [Segment(span=(0, len(text)), cover=(0, len(text)))] if text else []
    segments = []
    for i, span in enumerate(cores):
        start = 0 if i == 0 else cores[i - 1][1]
        end = len(text) if i == len(cores) - 1 else span[1]
        segments.append(Segment(span=span, cover=(start, end)))
    return segments


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    return (start + lead, end - trail)


def locate(segments: list[Segment], span: tuple[int, int]) -> int:
    """Index of the segment owning a token with character span `span`.

    A token is owned by the segment of its first visible character, so " sky"
    belongs to the word "sky" and a lone newline to the unit after it.
    """
    starts = [s.cover[0] for s in segments]
    return max(0, bisect.bisect_right(starts, span[0]) - 1)


def locate_token(segments: list[Segment], text: str, span: tuple[int, int]) -> int:
    start, end = span
    piece = text[start:end]
    visible = start + (len(piece) - len(piece.lstrip())) if piece.strip() else start
    return locate(segments, (visible, end))


def group_units(
    base_units: list[Unit],
    role_text: SourceText,
    granularity: str,
    pattern: str | None = None,
) -> tuple[list[Unit], list[int]]:
    """Join base units into coarser ones; returns the new units and, per base unit, its owner.

    Text is keyed by (role, turn), since roles repeat across turns: two user turns
    never share a unit, and `turn` makes each message one unit. Units keep the
    order of first appearance, so turns and earlier output stay in reading order.
    Units without a span (special tokens) stay alone.
    """
    segments_by_source: dict[tuple[str, int | None], list[Segment]] = {}
    units: list[Unit] = []
    owner: list[int] = []
    index_of: dict[tuple[str, int | None, int], int] = {}
    for base in base_units:
        source = (base.role, base.turn)
        text = role_text(base.role, base.turn)
        if base.span is None or not text:
            key = (*source, -len(units) - 1)
            seg_span, seg_text = base.span, base.text
        else:
            if source not in segments_by_source:
                segments_by_source[source] = segment(text, granularity, pattern)
            segs = segments_by_source[source]
            i = locate_token(segs, text, base.span)
            key = (*source, i)
            seg_span = segs[i].span
            seg_text = text[seg_span[0] : seg_span[1]]
        if key not in index_of:
            index_of[key] = len(units)
            units.append(
                Unit(text=seg_text, role=base.role, span=seg_span, tokens=[], turn=base.turn)
            )
        units[index_of[key]].tokens.extend(base.tokens)
        owner.append(index_of[key])
    return units, owner
