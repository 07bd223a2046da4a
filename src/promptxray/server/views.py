"""Turn a stored attribution into what the page draws, and into export files.

The page never aggregates, ranks or picks colours on its own: it asks for a
granularity, a row grouping for the heatmap (`rows`: output tokens, words,
sentences or lines, combined by `Attribution.matrix_rows`) and an intensity
(`gamma`), and gets units, scores, their colours, the heatmap's rows and colours,
the palette and the rankings computed here by
`Attribution` and `render.palette`, so the web UI shows exactly what the notebook
API, the CLI and the HTML export would. Whether a unit is tinted at all is the
palette's one rule (`Scale.tinted`); the top list leaves out the units it leaves
plain.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..api import Unit
from ..attribution import Attribution, MatrixRows
from ..record import FaithfulnessCheck
from ..render.html import render_html
from ..render.palette import Scale, css, palette_payload, scale_for, text_color
from ..render.pieces import source_sections, unit_place
from ..roles import ROLE_OUTPUT

# Where each role's text is shown on the page, as the top list names it.
ROLE_PLACE = {"system": "system prompt", "user": "prompt", "output": "output"}

# Search facts a joint method (xprompt) records in its metadata that the page shows.
SEARCH_KEYS = (
    "start",
    "budget",
    "spent",
    "passes_by_phase",
    "log_prob_drop",
    "baseline_objective",
    "objective",
    "trajectory",
    "accepted_swaps",
    "single_unit_evidence",
)


# How the page colours a check's badge, by the verdict's first words (`check.verdict`).
CHECK_TONES = {
    "faithful": "good",
    "partly faithful": "partial",
    "no better than random": "bad",
    "contradicted": "bad",
}


def check_view(check: FaithfulnessCheck | None) -> dict[str, Any] | None:
    """A check as the page draws it: its figures, the badge's words (the verdict up to its
    colon) and the badge's tone (good, partial, bad; none when not checked)."""
    if check is None:
        return None
    label = check.verdict.split(":", 1)[0].strip()
    return {**asdict(check), "label": label, "tone": CHECK_TONES.get(label, "none")}


def shown_check(
    attr: Attribution, later: FaithfulnessCheck | None = None
) -> FaithfulnessCheck | None:
    """The check of the whole target at the units shown: the one the result carries, else
    one computed `later`. A check is of the units it removed, so one computed at other
    units is never shown as this one's."""
    for check in (attr.record.check, later):
        if check is not None and check.token is None and check.granularity == attr.granularity:
            return check
    return None


def place_of(attr: Attribution, unit: Unit) -> str:
    """The text a unit is in, as lists name it: "prompt", or its turn "[turn 2 · assistant]"."""
    if attr.messages is None:
        return ROLE_PLACE.get(unit.role, unit.role)
    return unit_place(attr, unit)


def section_views(attr: Attribution) -> list[dict[str, Any]]:
    """The texts the page draws, in reading order, each with its heading and its text.

    The headings are `render.pieces.source_sections`' (every view names turns the
    same way); the output section is the whole output, the target inside it.
    """
    return [
        {
            "role": section.role,
            "turn": section.turn,
            "title": section.title,
            "text": attr.output
            if section.role == ROLE_OUTPUT
            else attr.role_text(section.role, section.turn),
        }
        for section in source_sections(attr)
    ]


def unit_positions(attr: Attribution) -> list[dict[str, Any]]:
    """Each unit's line in its own text and which occurrence of the same words it is.

    The top list needs both: "Topic:" three times in a prompt reads as
    "Topic: #3 · prompt line 7", so a click can find the right one.
    """
    seen: dict[str, int] = {}
    totals: dict[str, int] = {}
    for unit in attr.units:
        totals[unit.text.strip()] = totals.get(unit.text.strip(), 0) + 1
    out = []
    for unit in attr.units:
        key = unit.text.strip()
        seen[key] = seen.get(key, 0) + 1
        line = None
        if unit.span is not None:
            line = attr.role_text(unit.role, unit.turn)[: unit.span[0]].count("\n") + 1
        place = place_of(attr, unit)
        where = f"{place} line {line}" if line is not None else place
        repeat = f" #{seen[key]}" if totals[key] > 1 else ""
        out.append(
            {
                "line": line,
                "occurrence": seen[key],
                "occurrences": totals[key],
                "place": place,
                "position": f"{key or repr(unit.text)}{repeat} · {where}",
                "where": f"{repeat.strip()} · {where}" if repeat else where,
            }
        )
    return out


def unit_views(attr: Attribution, scale: Scale) -> list[dict[str, Any]]:
    """Units with their score, colour (the palette's), tint flag and position."""
    views = []
    positions = unit_positions(attr)
    inherited = attr.inherited
    for i, (unit, score) in enumerate(zip(attr.units, attr.scores, strict=True)):
        background = scale.color(score)
        views.append(
            {
                "index": i,
                "text": unit.text,
                "role": unit.role,
                "turn": unit.turn,
                "span": list(unit.span) if unit.span is not None else None,
                "score": float(score),
                "color": css(background),
                "text_color": css(text_color(background)),
                "tinted": scale.tinted(score),
                "inherited": i in inherited,
                **positions[i],
            }
        )
    return views


def search_detail(attr: Attribution) -> dict[str, Any] | None:
    """A joint method's search, in words the page shows instead of near-zero rows.

    The starting sets are given as unit texts, so "started from leave_one_out"
    can say which words that start held.
    """
    search = attr.record.search
    if search is None:
        return None
    found = asdict(search)
    detail = {key: found[key] for key in SEARCH_KEYS if found.get(key) is not None}
    texts = [u.text for u in attr.units]
    starts = []
    for name, start in search.starts.items():
        chosen = [texts[i] for i in start.set if 0 <= i < len(texts)]
        starts.append({"name": name, "units": chosen, "objective": start.objective})
    detail["starts"] = starts
    detail["chosen"] = [texts[i] for i in attr.selected or [] if 0 <= i < len(texts)]
    return detail


def interactions_view(attr: Attribution) -> dict[str, Any] | None:
    """A joint method's strongest pairwise interactions as the page lists them: each pair's
    units, texts, numbers and line (`Attribution.interactions`' words), and for each unit
    in a pair its partners, which hovering the unit highlights."""
    found = attr.interactions
    if found is None:
        return None
    pairs = [
        {
            "units": list(pair.units),
            "texts": list(pair.texts),
            "value": pair.value,
            "pair_drop": pair.pair_drop,
            "drops": list(pair.drops),
            "together": pair.together,
            "label": pair.label,
            "line": pair.line(),
            "detail": pair.detail(),
        }
        for pair in found.pairs
    ]
    partners = {str(unit): others for unit, others in found.partners().items()}
    return {"note": found.note(), "pairs": pairs, "partners": partners}


def explanation_view(
    explanation_id: str,
    run_id: str,
    attr: Attribution,
    settings: dict[str, Any],
    gamma: float = 1.0,
    scale: Scale | None = None,
    rows: str = "token",
    check: FaithfulnessCheck | None = None,
    check_due: bool = False,
) -> dict[str, Any]:
    """Everything needed to colour the prompt, list the top units and draw the heatmap.

    Colours: each unit's `color` / `text_color` come from the unit-score scale
    (`palette`, or the `scale` given when several views must share one); heatmap
    cells come as `matrix_stops`, indices into `matrix_palette.stops` (the
    matrix's own peak). Orders: `top` is the list order (strongest |score|
    first), `listed` the part of it the list shows (tinted units and a joint
    method's set), `removal` what "mask top-k" removes (most support first).
    The heatmap's rows are `rows` groups of the target (`matrix_rows` gives their
    text and the target tokens each combines); its colours are scaled to the
    largest cell drawn at that grouping, as the PNG's are. `check` is the
    faithfulness check at these units when the result carries none of its own (one
    computed later, at a regrouped granularity); `check_due` says the explanation was
    asked with its check and none is known here yet, so the page asks for it.
    """
    scale = scale or scale_for(attr.scores, signed=attr.signed, gamma=gamma)
    units = unit_views(attr, scale)
    grouped = attr.matrix_rows(rows)
    matrix = grouped.matrix if grouped is not None else None
    matrix_palette, matrix_stops = None, None
    if matrix is not None:
        cells = scale_for([v for row in matrix for v in row], signed=attr.signed, gamma=gamma)
        matrix_palette = palette_payload(cells)
        matrix_stops = [[cells.index(v) for v in row] for row in matrix]
    top = attr.ranking(by="magnitude")
    chosen = set(attr.selected or [])
    listed = [i for i in top if units[i]["tinted"] or i in chosen]
    shown = shown_check(attr, check)
    return {
        "explanation_id": explanation_id,
        "run_id": run_id,
        "method": attr.method,
        "granularity": attr.granularity,
        "base_granularity": attr.base_granularity,
        "prompt": attr.prompt,
        "system_prompt": attr.system_prompt,
        "messages": attr.messages,
        "sections": section_views(attr),
        "output_source": attr.record.provenance.output_source,
        "output": attr.output,
        "target_span": list(attr.target_span),
        "target_tokens": attr.target_tokens,
        "units": units,
        "matrix": matrix,
        "matrix_rows": matrix_rows_view(grouped),
        "matrix_note": attr.matrix_note(),
        "matrix_stops": matrix_stops,
        "selected": attr.selected,
        "top": top,
        "listed": listed,
        "removal": attr.ranking(by="support"),
        "max_abs": scale.peak,
        "signed": scale.signed,
        "palette": palette_payload(scale),
        "matrix_palette": matrix_palette,
        "template_tokens": attr.template_tokens,
        "template_scores": attr.template_scores,
        "settings": settings,
        "metadata": attr.metadata,
        "search": search_detail(attr),
        "interactions": interactions_view(attr),
        "completeness": attr.notes.completeness,
        "contrast": attr.notes.contrast,
        "refinement": attr.notes.refinement,
        "surrogate": attr.notes.surrogate,
        "check": check_view(shown),
        "check_due": check_due and shown is None,
    }


def matrix_rows_view(grouped: MatrixRows | None) -> dict[str, Any] | None:
    """The heatmap rows' grouping, text and member tokens: what its row labels and hover show."""
    if grouped is None:
        return None
    return {"by": grouped.by, "labels": grouped.labels, "tokens": grouped.tokens}


def export_html(attr: Attribution) -> str:
    """A standalone HTML page of the attribution: the same renderer as the notebook view."""
    return render_html(attr, standalone=True)
