"""Terminal view (rich): the prompt coloured by score, the target, the top units, the cost.

Every piece of user text goes into `rich.text.Text` objects, never into markup
strings, so brackets in a prompt ("[bold]") are printed, not interpreted.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..attribution import Attribution
from ..roles import ROLE_OUTPUT
from .palette import TARGET, Scale, css, scale_for, text_color
from .pieces import Section, cost_summary, role_pieces, source_sections, unit_place, visible

# Units weaker than this fraction of the peak are left unstyled: their palette colour
# is near-white, and a near-white box on a dark terminal would stand out more than
# the strong units do. Every other unit gets exactly the palette's RGB (truecolor).
MIN_STRENGTH = 0.05


def _rich(color: tuple[int, int, int]) -> str:
    return css(color).replace(" ", "")


def _style(scale: Scale, score: float, selected: bool) -> str:
    parts = []
    if abs(scale.strength(score)) >= MIN_STRENGTH:
        bg = scale.color(score)
        parts.append(f"{_rich(text_color(bg))} on {_rich(bg)}")
    if selected:
        parts.append("bold underline")
    return " ".join(parts)


def _coloured(
    attr: Attribution, section: Section, scale: Scale, scores: list[float], chosen: set[int]
) -> Text:
    text = Text()
    role, turn = section.role, section.turn
    for piece, index in role_pieces(attr.role_text(role, turn), attr.units, role, turn):
        if index is None:
            text.append(piece)
        else:
            text.append(piece, style=_style(scale, scores[index], index in chosen))
    return text


def _output(
    attr: Attribution, section: Section, scale: Scale, scores: list[float], chosen: set[int]
) -> Text:
    """The output with earlier (source) output coloured and the target highlighted."""
    start, end = attr.target_span
    text = _coloured(attr, section, scale, scores, chosen)
    text.append(attr.output[start:end], style=f"bold black on rgb{TARGET}")
    text.append(attr.output[end:], style="dim")
    return text


def _legend(scale: Scale, has_selection: bool) -> Text:
    """Swatches from the palette's ends (and zero), then the one caption every view prints."""
    legend = Text("colour: ", style="dim")
    stops = scale.stops
    if scale.signed:
        ends = [("−", stops[0]), ("0", scale.color(0.0)), ("+", stops[-1])]
    else:
        ends = [("0", stops[0]), ("max", stops[-1])]
    for label, rgb in ends:
        legend.append(f" {label} ", style=f"{_rich(text_color(rgb))} on {_rich(rgb)}")
    legend.append(" " + scale.caption(), style="dim")
    legend.append("  ")
    legend.append(" target ", style=f"bold black on rgb{TARGET}")
    if has_selection:
        legend.append("  ")
        legend.append("selected", style="bold underline")
        legend.append(" = chosen jointly", style="dim")
    return legend


def _fmt(score: float, signed: bool) -> str:
    return f"{score:+.4g}" if signed else f"{score:.4g}"


def _table(
    attr: Attribution, top: int, scale: Scale, scores: list[float], chosen: set[int]
) -> Table:
    """The strongest units first (`ranking("magnitude")`), the sign kept in the score."""
    units = attr.units
    order = " by |score|" if scale.signed else ""
    table = Table(title=f"Top {top} units{order}", title_justify="left", show_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("unit")
    table.add_column("role", style="dim")
    table.add_column("score", justify="right")
    if attr.selected is not None:
        table.add_column("selected", justify="center")
    inherited = attr.inherited
    for rank, i in enumerate(attr.ranking(by="magnitude")[:top], start=1):
        unit, score = units[i], scores[i]
        row: list[Text] = [
            Text(str(rank)),
            Text(visible(unit.text, 40), style=_style(scale, score, i in chosen)),
            Text(unit_place(attr, unit)),
            Text(
                ("≈" if i in inherited else "")
                + (f"{score:+.4g}" if scale.signed else f"{score:.4g}")
            ),
        ]
        if attr.selected is not None:
            row.append(Text("✓" if i in chosen else ""))
        table.add_row(*row)
    return table


def render_console(attr: Attribution, top: int = 10) -> RenderableType:
    """A rich renderable of an `Attribution` (what `rich.print(attr)` shows)."""
    scores = attr.scores
    scale = scale_for(scores, signed=attr.signed)
    chosen = set(attr.selected or [])
    parts: list[RenderableType] = []
    for section in source_sections(attr):
        draw = _output if section.role == ROLE_OUTPUT else _coloured
        body = draw(attr, section, scale, scores, chosen)
        title = Text(section.title)  # a Text: "[turn 2 · user]" is not rich markup
        parts.append(Panel(body, title=title, title_align="left", border_style="dim"))
    parts.append(_legend(scale, attr.selected is not None))
    if top > 0 and attr.units:
        parts.append(_table(attr, min(top, len(attr.units)), scale, scores, chosen))
    interactions = _interactions(attr)
    if interactions is not None:
        parts.append(interactions)
    meta = Text(style="dim")
    for n, (label, value) in enumerate(cost_summary(attr)):
        meta.append((" · " if n else "") + f"{label} {value}")
    parts.append(meta)
    notes = attr.notes
    if notes.completeness:  # integrated gradients: how far its sum is from what it should be
        parts.append(Text(notes.completeness, style="dim"))
    if notes.refinement:  # a coarse pass: which scores are estimates
        parts.append(Text(notes.refinement, style="dim"))
    if notes.contrast:  # a contrast: both log-probabilities, before and after masking
        parts.append(Text(notes.contrast))
    if notes.check:  # does the model follow this explanation?
        parts.append(Text(notes.check, style=_check_style(attr)))
    if notes.surrogate:  # context_cite: its fit on unseen ablations; other spans for free
        parts.append(Text(notes.surrogate, style="dim"))
    return Group(*parts)


def _interactions(attr: Attribution) -> Text | None:
    """A joint method's strongest pairwise interactions, one line each, with the numbers."""
    found = attr.interactions
    if found is None:
        return None
    text = Text("Units that act together", style="bold")
    text.append(f"  {found.note()}", style="dim")
    if not found.pairs:
        text.append("\n  none measured: no pair had all of its terms scored", style="dim")
    for pair in found.pairs:
        text.append("\n  " + pair.line())
        text.append(f"  ({pair.detail()})", style="dim")
    return text


def _check_style(attr: Attribution) -> str:
    """Green when the check calls the explanation faithful, yellow when it could not
    tell or only partly, red when it is no better than random or contradicted."""
    check = attr.record.check
    if check is None or check.faithful is None:
        return "dim"
    if check.faithful:
        return "green"
    return "yellow" if check.verdict.startswith("partly") else "red"
