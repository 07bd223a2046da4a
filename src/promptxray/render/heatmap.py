"""Heatmap picture: which source unit drives which target token.

Rows are the target tokens, columns the source units at the attribution's
current granularity (the matrix rows are already summed into those units). The
figure grows with the counts so 60 x 60 stays readable. It is drawn on a bare
`Figure` with the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError
from ..model import ROLE_OUTPUT, ROLE_SYSTEM
from .palette import Scale, scale_for
from .pieces import token_label, visible

_CELL_INCHES = 0.24
_ROLE_PREFIX = {ROLE_SYSTEM: "sys: ", ROLE_OUTPUT: "out: "}


def _mpl_safe(label: str) -> str:
    """Keep matplotlib from reading `$...$` in a token as mathtext."""
    return label.replace("$", r"\$")


def palette_cmap(scale: Scale) -> Any:
    """The palette's stops as a matplotlib colour map: the same bins, so the same colours."""
    from matplotlib.colors import ListedColormap

    stops = [tuple(c / 255 for c in rgb) for rgb in scale.stops]
    name = "promptxray_signed" if scale.signed else "promptxray_unsigned"
    return ListedColormap(stops, name=name)


def unit_labels(attr: Any, limit: int = 24) -> list[str]:
    """Column labels: the unit text on one line, its role marked when it is not the prompt."""
    labels = []
    for unit in attr.units:
        text = visible(unit.text, limit).strip(" ") or token_label(unit.text)
        labels.append(_ROLE_PREFIX.get(unit.role, "") + text)
    return labels


def heatmap_figure(
    attr: Any,
    *,
    max_label: int = 24,
    cmap: str | None = None,
    title: str | None = None,
) -> Any:
    """A matplotlib `Figure` of `attr.matrix` (target tokens x units).

    Coloured by the palette every view uses, scaled to the largest |cell|; `cmap`
    overrides the colour map (the colour bar then no longer matches the other views).
    """
    matrix = attr.matrix
    if matrix is None:
        raise InvalidParameterError(
            f"This {attr.method} result has no target-token x unit matrix; "
            "compute it with matrix=True (the CLI's heatmap command does)."
        )
    if not matrix or not matrix[0]:
        raise InvalidParameterError("The matrix is empty: there is nothing to draw.")

    from matplotlib.figure import Figure

    n_rows, n_cols = len(matrix), len(matrix[0])
    rows = [token_label(p, max_label) for p in attr.target_tokens]
    if len(rows) != n_rows:  # defensive: label by position rather than mislabel
        rows = [str(i) for i in range(n_rows)]
    cols = unit_labels(attr, max_label)
    scale = scale_for([v for row in matrix for v in row], signed=attr.signed)
    lo, hi = scale.domain
    if not scale.peak > 0:  # all cells 0: an honest white picture, not a divide by zero
        lo, hi = (-1.0, 1.0) if scale.signed else (0.0, 1.0)

    font = 9 if max(n_rows, n_cols) <= 30 else 7
    longest_col = max(len(c) for c in cols)
    longest_row = max(len(r) for r in rows)
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
    ax.set_yticks(range(n_rows), [_mpl_safe(r) for r in rows])
    ax.tick_params(labelsize=font, length=2)
    ax.set_xlabel(f"source units ({attr.granularity})", fontsize=font + 1)
    ax.set_ylabel("target tokens", fontsize=font + 1)
    model = (attr.metadata or {}).get("model")
    default_title = f"{attr.method} · {attr.granularity}" + (f" · {model}" if model else "")
    ax.set_title(_mpl_safe(title or default_title), fontsize=font + 2)
    bar = fig.colorbar(image, ax=ax, shrink=min(1.0, max(0.5, 8 / n_rows)))
    bar.set_label(_mpl_safe(scale.caption()), fontsize=font + 1)
    bar.ax.tick_params(labelsize=font)
    return fig


def save_heatmap(attr: Any, path: str | Path, dpi: int = 120, **options: Any) -> Path:
    """Draw the heatmap and write it (format from the suffix: .png, .svg, .pdf)."""
    fig = heatmap_figure(attr, **options)
    path = Path(path)
    with warnings.catch_warnings():
        # A token in a script the font lacks draws as a box; that is no reason to warn.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(path, dpi=dpi)
    return path
