"""HTML view: a self-contained fragment (inline styles only) for notebooks, files and the web UI.

Everything that came from a user or a model (prompt, output, token text, method
names, metadata) passes through `html.escape` before it is written, so a prompt
holding markup shows that markup instead of running it.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ..attribution import Attribution
from ..roles import ROLE_OUTPUT
from ..segments import Unit
from ..unit_pairs import nats
from .palette import TARGET, Scale, css, scale_for, text_color
from .pieces import Section, cost_summary, role_pieces, source_sections, unit_place, visible

_BOX = (
    "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:14px;line-height:1.7;"
    "color:#111;background:#fff;padding:10px 12px;border:1px solid #ddd;border-radius:6px"
)
_TEXT = (
    "white-space:pre-wrap;word-wrap:break-word;font-family:ui-monospace,'SFMono-Regular',"
    "Menlo,Consolas,monospace;font-size:13px;margin:2px 0 10px 0"
)
_HEADING = "font-weight:600;font-size:12px;text-transform:uppercase;color:#555;letter-spacing:.04em"
_SELECTED = "outline:2px solid #111;outline-offset:1px;font-weight:700"


def _fmt(score: float, scale: Scale) -> str:
    return f"{score:+.4g}" if scale.signed else f"{score:.4g}"


@dataclass
class _View:
    """What every part of the page needs, computed once (unit scores are a derived view)."""

    attr: Attribution
    units: list[Unit]
    scores: list[float]
    scale: Scale
    chosen: set[int]
    partners: dict[int, list[int]]  # units in a shown interaction, and their partners


def _unit_span(text: str, index: int, view: _View) -> str:
    unit, score, scale = view.units[index], view.scores[index], view.scale
    bg = scale.color(score)
    style = f"background:{css(bg)};color:{css(text_color(bg))};border-radius:3px"
    title = f"score {_fmt(score, scale)} · {unit_place(view.attr, unit)} · unit {index}"
    if index in view.chosen:
        style += ";" + _SELECTED
        title += " · selected"
    partners = ""
    if index in view.partners:
        partners = f' data-partners="{" ".join(str(p) for p in view.partners[index])}"'
    return (
        f'<span data-unit="{index}"{partners} style="{style}" title="{escape(title)}">'
        f"{escape(text)}</span>"
    )


def _role_html(view: _View, section: Section) -> str:
    parts = []
    role, turn = section.role, section.turn
    for piece, index in role_pieces(view.attr.role_text(role, turn), view.units, role, turn):
        parts.append(escape(piece) if index is None else _unit_span(piece, index, view))
    return "".join(parts)


def _output_html(view: _View, section: Section) -> str:
    attr = view.attr
    start, end = attr.target_span
    target_style = f"background:{css(TARGET)};border-radius:3px;box-shadow:0 0 0 1px #ca8a04"
    return (
        _role_html(view, section) + f'<mark class="pxr-target" style="{target_style};color:#111" '
        f'title="explained target">{escape(attr.output[start:end])}</mark>'
        + f'<span style="color:#888">{escape(attr.output[end:])}</span>'
    )


def _legend(scale: Scale, has_selection: bool) -> str:
    """The colour bar drawn from the palette's own stops, its ends, and the one caption."""
    stops = scale.stops
    bar = "linear-gradient(to right," + ",".join(css(s) for s in stops) + ")"
    peak = scale.peak_label()
    ends = (f"−{peak}", "0", f"+{peak}") if scale.signed else ("0", "", peak)
    labels = "".join(f"<span>{escape(e)}</span>" for e in ends)
    out = (
        '<div class="pxr-legend" style="display:flex;align-items:center;gap:10px;'
        'font-size:12px;color:#444;margin:4px 0 8px 0;flex-wrap:wrap">'
        f'<div style="width:220px"><div style="height:10px;border:1px solid #ccc;'
        f'border-radius:2px;background:{bar}"></div>'
        f'<div style="display:flex;justify-content:space-between">{labels}</div></div>'
        f'<span class="pxr-caption">{escape(scale.caption())}</span>'
        f'<span style="background:{css(TARGET)};padding:0 4px;border-radius:3px">target</span>'
    )
    if has_selection:
        out += f'<span style="{_SELECTED};padding:0 4px">selected</span><span>chosen jointly</span>'
    return out + "</div>"


def _top_list(view: _View, top: int) -> str:
    """The strongest units first (`ranking("magnitude")`), the sign kept in the score."""
    items = []
    inherited = view.attr.inherited
    for i in view.attr.ranking(by="magnitude")[:top]:
        unit, score = view.units[i], view.scores[i]
        label = _unit_span(visible(unit.text, 60), i, view)
        mark = " · selected" if i in view.chosen else ""
        mark += " · ≈ inherited, not refined" if i in inherited else ""
        items.append(
            f'<li>{label} <span style="color:#555;font-family:ui-monospace,monospace;'
            f'font-size:12px">{escape(_fmt(score, view.scale))} · '
            f"{escape(unit_place(view.attr, unit))}{mark}"
            "</span></li>"
        )
    order = " by |score|" if view.scale.signed else ""
    return (
        f'<div style="{_HEADING}">Top {len(items)} units{order}</div>'
        f'<ol style="margin:2px 0 8px 0;padding-left:24px">{"".join(items)}</ol>'
    )


def _interactions_html(view: _View) -> str:
    """A joint method's strongest pairwise interactions (empty without them): each pair's
    units as in the text, its line and the drops it comes from."""
    found = view.attr.interactions
    if found is None:
        return ""
    items = []
    for pair in found.pairs:
        a, b = pair.units
        units = _unit_span(visible(pair.texts[0], 30), a, view) + (
            " + " if pair.together else " / "
        )
        units += _unit_span(visible(pair.texts[1], 30), b, view)
        items.append(
            f'<li data-units="{a} {b}" data-value="{pair.value:.6g}" '
            f'title="{escape(pair.detail())}">{escape(pair.label)}: {units} '
            f'<span style="color:#555;font-family:ui-monospace,monospace">'
            f"{escape(nats(pair.value))} nats</span></li>"
        )
    body = (
        f'<ul style="margin:2px 0 6px 0;padding-left:20px">{"".join(items)}</ul>' if items else ""
    )
    return (
        f'<div class="pxr-interactions" style="font-size:12px;margin-top:4px">'
        f'<div style="{_HEADING}">Units that act together</div>'
        f'<div style="color:#666">{escape(found.note())}</div>{body}</div>'
    )


def _note_html(note: str | None, kind: str, dim: bool = True) -> str:
    """One of the result's notes as a line (empty without it): the completeness gap, the
    refinement of a coarse pass, a contrast's two log-probabilities."""
    if not note:
        return ""
    colour = ";color:#666" if dim else ""
    return f'<div class="pxr-{kind}" style="font-size:12px{colour}">{escape(note)}</div>'


def _check_html(attr: Attribution) -> str:
    """The faithfulness check's verdict and its deletion curve (empty without a check)."""
    check = attr.record.check
    if check is None:
        return ""
    curve = " → ".join(f"{value:.2f}×" for value in check.curve)
    figures = f"p(target) per token as the top units go, k = 0…{len(check.curve) - 1}: {curve}"
    if check.sufficiency_ratio is not None:
        figures += f"; only the top {check.k} kept: {check.sufficiency_ratio:.2f}×"
    return (
        '<div class="pxr-check" style="font-size:12px;margin-top:4px">'
        f"<b>{escape(attr.notes.check or '')}</b>"
        + (f'<div style="color:#666">{escape(figures)}</div>' if check.curve else "")
        + "</div>"
    )


def render_html(attr: Attribution, standalone: bool = False, top: int = 10) -> str:
    """The attribution as HTML; `standalone=True` gives a whole page instead of a fragment."""
    scores = attr.scores
    scale = scale_for(scores, signed=attr.signed)
    shown = attr.interactions
    partners = shown.partners() if shown is not None else {}
    view = _View(attr, attr.units, scores, scale, set(attr.selected or []), partners)
    sections = []
    for section in source_sections(attr):
        draw = _output_html if section.role == ROLE_OUTPUT else _role_html
        turn = "" if section.turn is None else f' data-turn="{section.turn}"'
        sections.append(
            f'<div style="{_HEADING}">{escape(section.title)}</div>'
            f'<div class="pxr-{escape(section.role)}"{turn} style="{_TEXT}">'
            f"{draw(view, section)}</div>"
        )
    meta = " · ".join(f"{escape(k)} {escape(v)}" for k, v in cost_summary(attr))
    fragment = (
        f'<div class="promptxray" style="{_BOX}">'
        + "".join(sections)
        + _legend(view.scale, attr.selected is not None)
        + (_top_list(view, min(top, len(view.units))) if top > 0 and view.units else "")
        + f'<div style="font-size:12px;color:#666">{meta}</div>'
        + _note_html(attr.notes.completeness, "completeness")
        + _note_html(attr.notes.refinement, "refinement")
        + _note_html(attr.notes.contrast, "contrast", dim=False)
        + _note_html(attr.notes.surrogate, "surrogate")
        + _check_html(attr)
        + _interactions_html(view)
        + "</div>"
    )
    if not standalone:
        return fragment
    title = escape(f"promptxray: {attr.method}")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title></head>"
        f'<body style="margin:16px;background:#f6f6f6">{fragment}</body></html>\n'
    )
