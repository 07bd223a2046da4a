"""Turn a stored attribution into what the page draws, and into export files.

The page never aggregates or ranks on its own: it asks for a granularity and gets
units, scores, the heatmap and the ranking computed here by `Attribution`, so the
web UI shows exactly what the notebook API and the CLI would.
"""

from __future__ import annotations

import html
from typing import Any

from ..attribution import Attribution


def ranking(attr: Attribution) -> list[int]:
    """View-unit indices, highest score first; a joint method's selected set leads."""
    scores = attr.scores
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    chosen = attr.selected
    if chosen:
        picked = set(chosen)
        order = [i for i in order if i in picked] + [i for i in order if i not in picked]
    return order


def explanation_view(
    explanation_id: str, run_id: str, attr: Attribution, settings: dict[str, Any]
) -> dict[str, Any]:
    """Everything needed to colour the prompt, list the top units and draw the heatmap."""
    units, scores = attr.units, attr.scores
    matrix = attr.matrix
    values = list(scores) + [v for row in matrix or [] for v in row]
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
        "units": [
            {
                "index": i,
                "text": u.text,
                "role": u.role,
                "span": list(u.span) if u.span is not None else None,
                "score": float(s),
            }
            for i, (u, s) in enumerate(zip(units, scores, strict=True))
        ],
        "matrix": matrix,
        "selected": attr.selected,
        "top": ranking(attr),
        "max_abs": max((abs(float(s)) for s in scores), default=0.0),
        "signed": any(v < 0 for v in values),
        "template_tokens": attr.template_tokens,
        "template_scores": attr.template_scores,
        "settings": settings,
        "metadata": attr.metadata,
    }


def export_html(attr: Attribution) -> str:
    """A standalone HTML page of the attribution (the renderer's, or a plain escaped one)."""
    try:
        from ..render.html import render_html
    except ImportError:
        return plain_html(attr)
    return render_html(attr, standalone=True)


def plain_html(attr: Attribution) -> str:
    """A minimal self-contained page: units shaded by score, every text escaped."""
    scores = attr.scores
    peak = max((abs(s) for s in scores), default=0.0) or 1.0
    rows = []
    for unit, score in zip(attr.units, scores, strict=True):
        alpha = min(1.0, abs(score) / peak)
        colour = f"rgba(220,90,30,{alpha:.2f})" if score >= 0 else f"rgba(40,110,220,{alpha:.2f})"
        rows.append(
            f'<span title="{score:.4g}" style="background:{colour}">{html.escape(unit.text)}</span>'
        )
    title = html.escape(f"promptxray: {attr.method} at {attr.granularity} granularity")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body style='font-family:sans-serif;max-width:50em'>"
        f"<h1>{title}</h1><h2>Source units</h2><p>{' '.join(rows)}</p>"
        f"<h2>Output</h2><pre style='white-space:pre-wrap'>{html.escape(attr.output)}</pre>"
        f"<h2>Explained target</h2><pre style='white-space:pre-wrap'>"
        f"{html.escape(attr.target)}</pre></body></html>"
    )
