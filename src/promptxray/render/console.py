"""Terminal view (rich): the prompt coloured by score, the target, the top units, the cost.

Every piece of user text goes into `rich.text.Text` objects, never into markup
strings, so brackets in a prompt ("[bold]") are printed, not interpreted.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..model import ROLE_OUTPUT
from .palette import TARGET, Scale, scale_for, text_color
from .pieces import SOURCE_ROLES, cost_summary, role_pieces, visible

# Units weaker than this fraction of the peak are left unstyled: a near-white box
# would stand out on a dark terminal more than the strong units do.
MIN_STRENGTH = 0.05


def _style(scale: Scale, score: float, selected: bool) -> str:
    strength = scale.strength(score)
    parts = []
    if abs(strength) >= MIN_STRENGTH:
        bg = scale.color(score)
        fg = text_color(bg)
        parts.append(f"rgb({fg[0]},{fg[1]},{fg[2]}) on rgb({bg[0]},{bg[1]},{bg[2]})")
    if selected:
        parts.append("bold underline")
    return " ".join(parts)


def _coloured(attr: Any, role: str, scale: Scale, scores: list[float], chosen: set[int]) -> Text:
    text = Text()
    for piece, index in role_pieces(attr.role_text(role), attr.units, role):
        if index is None:
            text.append(piece)
        else:
            text.append(piece, style=_style(scale, scores[index], index in chosen))
    return text


def _output(attr: Any, scale: Scale, scores: list[float], chosen: set[int]) -> Text:
    """The output with earlier (source) output coloured and the target highlighted."""
    start, end = attr.target_span
    text = _coloured(attr, ROLE_OUTPUT, scale, scores, chosen)
    text.append(attr.output[start:end], style=f"bold black on rgb{TARGET}")
    text.append(attr.output[end:], style="dim")
    return text


def _legend(scale: Scale, has_selection: bool) -> Text:
    legend = Text("colour: ", style="dim")
    if scale.signed:
        legend.append(" + ", style="white on rgb(37,99,235)")
        legend.append(" raises p(target)  ", style="dim")
        legend.append(" − ", style="white on rgb(220,38,38)")
        legend.append(" lowers it  ", style="dim")
    else:
        legend.append("   ", style="on rgb(234,88,12)")
        legend.append(" stronger influence (all scores ≥ 0)  ", style="dim")
    legend.append(f"peak |score| {scale.peak:.4g}", style="dim")
    legend.append("  ")
    legend.append(" target ", style=f"bold black on rgb{TARGET}")
    if has_selection:
        legend.append("  ")
        legend.append("selected", style="bold underline")
        legend.append(" = chosen jointly", style="dim")
    return legend


def _table(attr: Any, top: int, scale: Scale, chosen: set[int]) -> Table:
    units = attr.units
    index_of = {id(u): i for i, u in enumerate(units)}
    table = Table(title=f"Top {top} units", title_justify="left", show_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("unit")
    table.add_column("role", style="dim")
    table.add_column("score", justify="right")
    if attr.selected is not None:
        table.add_column("selected", justify="center")
    for rank, (unit, score) in enumerate(attr.top_k(top, by_abs=scale.signed), start=1):
        i = index_of[id(unit)]
        row: list[Text] = [
            Text(str(rank)),
            Text(visible(unit.text, 40), style=_style(scale, score, i in chosen)),
            Text(unit.role),
            Text(f"{score:+.4g}" if scale.signed else f"{score:.4g}"),
        ]
        if attr.selected is not None:
            row.append(Text("✓" if i in chosen else ""))
        table.add_row(*row)
    return table


def render_console(attr: Any, top: int = 10) -> RenderableType:
    """A rich renderable of an `Attribution` (what `rich.print(attr)` shows)."""
    scores = attr.scores
    scale = scale_for(scores)
    chosen = set(attr.selected or [])
    parts: list[RenderableType] = []
    for role, title in SOURCE_ROLES:
        if role == ROLE_OUTPUT:
            body, title = _output(attr, scale, scores, chosen), "Output (target highlighted)"
        elif attr.role_text(role):
            body = _coloured(attr, role, scale, scores, chosen)
        else:
            continue
        parts.append(Panel(body, title=title, title_align="left", border_style="dim"))
    parts.append(_legend(scale, attr.selected is not None))
    if top > 0 and attr.units:
        parts.append(_table(attr, min(top, len(attr.units)), scale, chosen))
    meta = Text(style="dim")
    for n, (label, value) in enumerate(cost_summary(attr)):
        meta.append((" · " if n else "") + f"{label} {value}")
    parts.append(meta)
    return Group(*parts)
