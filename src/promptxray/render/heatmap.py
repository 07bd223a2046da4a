"""Heatmap picture: which source unit drives which target token.

Rows are the target tokens (or output words, sentences, lines:
`Attribution.matrix_rows`), columns the source units at the attribution's
granularity. The figure grows with the counts so 60 x 80 stays readable; above
that (`MAX_ROWS`, `MAX_COLUMNS`) `heatmap_layout` groups rows, and columns where
the method's rule allows it, into the finest level that fits, and the title says
so: a 300-token output over a 200-word prompt is drawn as output sentences x
prompt sentences rather than 60,000 cells no one can read. It is drawn on a bare
`Figure` with the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..attribution import ROW_GROUPINGS, Attribution, MatrixRows
from ..errors import InvalidParameterError, RegroupRefusedError
from ..roles import ROLE_ASSISTANT, ROLE_OUTPUT, ROLE_SYSTEM
from .palette import Scale, scale_for
from .pieces import token_label, visible

_CELL_INCHES = 0.24
_ROLE_PREFIX = {ROLE_SYSTEM: "sys: ", ROLE_ASSISTANT: "asst: ", ROLE_OUTPUT: "out: "}

# Above these counts labels no longer fit their cells and `auto` groups them.
MAX_ROWS = 60
MAX_COLUMNS = 80
ROW_CHOICES = ("auto", *ROW_GROUPINGS)
COLUMN_CHOICES = ("auto", "keep")
# Column granularities from fine to coarse: auto only ever moves to a coarser one.
_COARSER = ("token", "word", "sentence", "line", "paragraph")
_PLURAL = {"word": "words", "sentence": "sentences", "line": "lines", "paragraph": "paragraphs"}


@dataclass(frozen=True)
class Layout:
    """What the picture draws: columns (`attr` at its granularity), rows, and why."""

    attr: Attribution
    rows: MatrixRows
    notes: list[str] = field(default_factory=list)  # one line of the title per choice


def choose_rows(attr: Attribution, rows: str = "auto") -> tuple[MatrixRows, str | None]:
    """Rows as asked, or with `auto` the finest output grouping with at most MAX_ROWS.

    Tokens up to MAX_ROWS; else words, sentences, lines, the first that fits
    (the one with fewest rows if none does). The note names the choice.
    """
    if rows not in ROW_CHOICES:
        raise InvalidParameterError(
            f"Group heatmap rows by one of {', '.join(ROW_CHOICES)}, not {rows!r}."
        )
    n = len(attr.target_tokens)
    if rows != "auto":
        chosen = attr.matrix_rows(rows)
        note = None if chosen.by == "token" else f"rows: output {_PLURAL[chosen.by]} ({n} tokens)"
        return chosen, note
    tokens = attr.matrix_rows("token")
    if len(tokens.labels) <= MAX_ROWS:
        return tokens, None
    candidates = [attr.matrix_rows(by) for by in ROW_GROUPINGS[1:]]
    fits = [c for c in candidates if len(c.labels) <= MAX_ROWS]
    chosen = fits[0] if fits else min(candidates, key=lambda c: len(c.labels))
    return chosen, f"rows: output {_PLURAL[chosen.by]} (auto, {n} tokens)"


def choose_columns(attr: Attribution, columns: str = "auto") -> tuple[Attribution, str | None]:
    """The attribution as given, or with `auto` above MAX_COLUMNS units a coarser granularity.

    Only where the method's rule allows regrouping (`Attribution.aggregate`); a
    result computed on whole units keeps its columns, and the note says why.
    """
    if columns not in COLUMN_CHOICES:
        raise InvalidParameterError(f"Columns are {' or '.join(COLUMN_CHOICES)}, not {columns!r}.")
    n, granularity = len(attr.units), attr.granularity
    if columns == "keep" or n <= MAX_COLUMNS:
        return attr, None
    if attr.matrix_granularity is not None:  # computed over these units: no other heatmap
        return attr, f"columns: {n} {granularity} units (kept: the heatmap exists only there)"
    start = _COARSER.index(granularity) + 1 if granularity in _COARSER else 2
    candidates = []
    for coarser in _COARSER[start:]:
        try:
            candidates.append(attr.aggregate(coarser))
        except RegroupRefusedError:
            return attr, f"columns: {n} {granularity} units (kept: {attr.method} cannot regroup)"
    if not candidates:
        return attr, None
    fits = [c for c in candidates if len(c.units) <= MAX_COLUMNS]
    chosen = fits[0] if fits else min(candidates, key=lambda c: len(c.units))
    plural = _PLURAL[chosen.granularity]
    return chosen, f"columns: prompt {plural} (auto, {n} {granularity} units)"


def heatmap_layout(attr: Attribution, rows: str = "auto", columns: str = "auto") -> Layout:
    """Columns first (rows are combined over the chosen columns), then rows."""
    shown, column_note = choose_columns(attr, columns)
    grouped, row_note = choose_rows(shown, rows)
    return Layout(shown, grouped, [n for n in (row_note, column_note) if n])


def _mpl_safe(label: str) -> str:
    """Keep matplotlib from reading `$...$` in a token as mathtext."""
    return label.replace("$", r"\$")


def palette_cmap(scale: Scale) -> Any:
    """The palette's stops as a matplotlib colour map: the same bins, so the same colours."""
    from matplotlib.colors import ListedColormap

    stops = [tuple(c / 255 for c in rgb) for rgb in scale.stops]
    name = "promptxray_signed" if scale.signed else "promptxray_unsigned"
    return ListedColormap(stops, name=name)


def unit_labels(attr: Attribution, limit: int = 24) -> list[str]:
    """Column labels: the unit text on one line, its role marked when it is not the prompt,
    and in a conversation its turn first ("t2 asst: It is blue."), since roles repeat."""
    labels = []
    conversation = getattr(attr, "messages", None) is not None
    for unit in attr.units:
        text = visible(unit.text, limit).strip(" ") or token_label(unit.text)
        turn = f"t{unit.turn} " if conversation and unit.turn is not None else ""
        labels.append(turn + _ROLE_PREFIX.get(unit.role, "") + text)
    return labels


def heatmap_figure(
    attr: Attribution,
    *,
    max_label: int = 24,
    cmap: str | None = None,
    title: str | None = None,
    rows: str = "auto",
    columns: str = "auto",
) -> Any:
    """A matplotlib `Figure` of the target x unit matrix, grouped as `heatmap_layout` says.

    `rows`: auto, token, word, sentence or line; `columns`: auto (coarser units
    above MAX_COLUMNS where the rule allows) or keep. Coloured by the palette every
    view uses, scaled to the largest |cell| drawn; `cmap` overrides the colour map
    (the colour bar then no longer matches the other views).
    """
    if attr.matrix is None:
        raise InvalidParameterError(
            attr.matrix_note()
            or f"This {attr.method} result has no target-token x unit matrix; "
            "compute it with matrix=True (the CLI's heatmap command does)."
        )
    if not attr.matrix or not attr.matrix[0]:
        raise InvalidParameterError("The matrix is empty: there is nothing to draw.")

    from matplotlib.figure import Figure

    layout = heatmap_layout(attr, rows, columns)
    shown, matrix = layout.attr, layout.rows.matrix
    n_rows, n_cols = len(matrix), len(matrix[0])
    row_labels = _row_labels(layout.rows, max_label)
    cols = unit_labels(shown, max_label)
    scale = scale_for([v for row in matrix for v in row], signed=attr.signed)
    lo, hi = scale.domain
    if not scale.peak > 0:  # all cells 0: an honest white picture, not a divide by zero
        lo, hi = (-1.0, 1.0) if scale.signed else (0.0, 1.0)

    font = 9 if max(n_rows, n_cols) <= 30 else 7
    longest_col = max(len(c) for c in cols)
    longest_row = max(len(r) for r in row_labels)
    char = font / 72 * 0.62  # inches per character, roughly
    width = max(5.0, 1.8 + longest_row * char + _CELL_INCHES * n_cols)
    height = max(3.5, 1.4 + longest_col * char * 0.75 + _CELL_INCHES * n_rows)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    # The palette's near-zero rule: cells within `floor` of zero draw as white.
    cut = scale.floor * scale.peak
    drawn = [[v if abs(v) >= cut else 0.0 for v in row] for row in matrix]
    image = ax.imshow(
        drawn,
        aspect="auto",
        cmap=cmap or palette_cmap(scale),
        vmin=lo,
        vmax=hi,
        interpolation="nearest",
    )
    ax.set_xticks(range(n_cols), [_mpl_safe(c) for c in cols], rotation=60, ha="right")
    ax.set_yticks(range(n_rows), [_mpl_safe(r) for r in row_labels])
    ax.tick_params(labelsize=font, length=2)
    ax.set_xlabel(f"source units ({shown.granularity})", fontsize=font + 1)
    by = layout.rows.by
    ax.set_ylabel("target tokens" if by == "token" else f"output {_PLURAL[by]}", fontsize=font + 1)
    ax.set_title(_mpl_safe(_title(shown, title, layout.notes)), fontsize=font + 2)
    bar = fig.colorbar(image, ax=ax, shrink=min(1.0, max(0.5, 8 / n_rows)))
    bar.set_label(_mpl_safe(scale.caption()), fontsize=font + 1)
    bar.ax.tick_params(labelsize=font)
    return fig


def _row_labels(rows: MatrixRows, limit: int) -> list[str]:
    """Token rows as the token (spaces shown); grouped rows as their text, given more room."""
    if rows.by == "token":
        return [token_label(label, limit) for label in rows.labels]
    return [visible(label, 2 * limit) or "∅" for label in rows.labels]


def _title(shown: Attribution, title: str | None, notes: list[str]) -> str:
    """The method, granularity and model, then one line naming any grouping chosen."""
    model = shown.record.provenance.model
    first = title or f"{shown.method} · {shown.granularity}" + (f" · {model}" if model else "")
    return "\n".join([first, " · ".join(notes)]) if notes else first


def save_heatmap(attr: Attribution, path: str | Path, dpi: int = 120, **options: Any) -> Path:
    """Draw the heatmap and write it (format from the suffix: .png, .svg, .pdf)."""
    fig = heatmap_figure(attr, **options)
    path = Path(path)
    with warnings.catch_warnings():
        # A token in a script the font lacks draws as a box; that is no reason to warn.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(path, dpi=dpi)
    return path
