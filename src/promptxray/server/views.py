"""Turn a stored attribution into what the page draws, and into export files.

The page never aggregates, ranks or picks colours on its own: it asks for a
granularity and gets units, scores, their colours, the palette, the heatmap and
the rankings computed here by `Attribution` and `render.palette`, so the web UI
shows exactly what the notebook API, the CLI and the HTML export would.
"""

from __future__ import annotations

from typing import Any

from ..attribution import Attribution
from ..render.html import render_html
from ..render.palette import css, palette_payload, scale_for, text_color


def explanation_view(
    explanation_id: str, run_id: str, attr: Attribution, settings: dict[str, Any]
) -> dict[str, Any]:
    """Everything needed to colour the prompt, list the top units and draw the heatmap.

    Colours: each unit's `color` / `text_color` come from the unit-score scale
    (`palette`); heatmap cells are drawn from `matrix_palette` (the matrix's own
    peak) by the rule in `render.palette`. Orders: `top` is the list order
    (strongest |score| first), `removal` what "mask top-k" removes (most support first).
    """
    units, scores = attr.units, attr.scores
    matrix = attr.matrix
    scale = scale_for(scores, signed=attr.signed)
    unit_views = []
    for i, (u, s) in enumerate(zip(units, scores, strict=True)):
        bg = scale.color(s)
        unit_views.append(
            {
                "index": i,
                "text": u.text,
                "role": u.role,
                "span": list(u.span) if u.span is not None else None,
                "score": float(s),
                "color": css(bg),
                "text_color": css(text_color(bg)),
            }
        )
    matrix_palette = None
    if matrix is not None:
        cells = scale_for([v for row in matrix for v in row], signed=attr.signed)
        matrix_palette = palette_payload(cells)
    return {
        "explanation_id": explanation_id,
        "run_id": run_id,
        "method": attr.method,
        "granularity": attr.granularity,
        "base_granularity": attr.base_granularity,
        "prompt": attr.prompt,
        "system_prompt": attr.system_prompt,
        "output": attr.output,
        "target_span": list(attr.target_span),
        "target_tokens": attr.target_tokens,
        "units": unit_views,
        "matrix": matrix,
        "selected": attr.selected,
        "top": attr.ranking(by="magnitude"),
        "removal": attr.ranking(by="support"),
        "max_abs": scale.peak,
        "signed": scale.signed,
        "palette": palette_payload(scale),
        "matrix_palette": matrix_palette,
        "template_tokens": attr.template_tokens,
        "template_scores": attr.template_scores,
        "settings": settings,
        "metadata": attr.metadata,
    }


def export_html(attr: Attribution) -> str:
    """A standalone HTML page of the attribution: the same renderer as the notebook view."""
    return render_html(attr, standalone=True)
