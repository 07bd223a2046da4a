"""The study report's figures, each a PNG (base64) to inline in the HTML page.

matplotlib's object API (`Figure`, no pyplot), so drawing needs no display and
leaves no global state behind.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from .measures import POSITION_BINS
from .spec import OTHER, PART_NAMES


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def shares_figure(table: list[dict[str, Any]]) -> str:
    parts = [p for p in (*PART_NAMES, OTHER) if any(p in row for row in table)]
    models = list(dict.fromkeys(row["model"] for row in table))
    fig = _figure(max(6, 0.7 * len(table) / max(1, len(models)) + 3), 3.2 * len(models))
    cmap = _part_colours(parts)
    for i, model in enumerate(models):
        ax = fig.add_subplot(len(models), 1, i + 1)
        rows = [row for row in table if row["model"] == model]
        bottom = [0.0] * len(rows)
        for p in parts:
            heights = [row[p][0] if p in row else 0.0 for row in rows]
            ax.bar(range(len(rows)), heights, bottom=bottom, color=cmap[p], label=p)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_xticks(
            range(len(rows)),
            [f"{r['task']}\n{r['structure']}" for r in rows],
            fontsize=7,
            rotation=30,
            ha="right",
        )
        ax.set_ylabel("share of |attribution|")
        ax.set_ylim(0, 1)
        ax.set_title(model, fontsize=10)
        if i == 0:
            ax.legend(fontsize=7, ncols=min(4, len(parts)), loc="upper right")
    return _png(fig)


def _part_colours(parts: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    tab = colormaps["tab10"]
    return {p: ("#c8c8c8" if p == OTHER else tab(PART_NAMES.index(p) % 10)) for p in parts}


def profile_figure(profiles: dict[tuple[str, str], list[float]]) -> str:
    models = list(dict.fromkeys(m for _, m in profiles))
    fig = _figure(4.2 * len(models), 3.2)
    xs = [(i + 0.5) / POSITION_BINS for i in range(POSITION_BINS)]
    for i, model in enumerate(models):
        ax = fig.add_subplot(1, len(models), i + 1)
        for (task, m), values in profiles.items():
            if m == model:
                ax.plot(xs, values, marker="o", markersize=3, label=task)
        ax.set_xlabel("relative position in the prompt")
        ax.set_ylabel("share of |attribution|")
        ax.set_title(model, fontsize=10)
        ax.legend(fontsize=7)
    return _png(fig)


def shift_figure(table: list[dict[str, Any]]) -> str:
    models = list(dict.fromkeys(r["model"] for r in table))
    fig = _figure(4.2 * max(1, len(models)), 3.2)
    for i, model in enumerate(models):
        ax = fig.add_subplot(1, len(models), i + 1)
        rows = [r for r in table if r["model"] == model]
        xs = range(len(rows))
        ax.bar([x - 0.2 for x in xs], [r["early"][0] for r in rows], 0.4, label="first half")
        ax.bar([x + 0.2 for x in xs], [r["late"][0] for r in rows], 0.4, label="second half")
        ax.set_xticks(list(xs), [r["part"] for r in rows], fontsize=8, rotation=30, ha="right")
        ax.set_ylabel("share of |attribution|")
        ax.set_title(model, fontsize=10)
        ax.legend(fontsize=7)
    return _png(fig)


def adherence_figure(corr: dict[str, Any]) -> str:
    fig = _figure(4.6, 3.4)
    ax = fig.add_subplot()
    groups = corr["groups"]
    ax.scatter([g[0] for g in groups], [g[1] for g in groups], s=18)
    if "slope" in corr:
        xs = [min(g[0] for g in groups), max(g[0] for g in groups)]
        ax.plot(xs, [corr["intercept"] + corr["slope"] * x for x in xs], color="black", lw=1)
        ax.set_title(
            f"one point per task × structure × model; r = {corr['group_r']:+.2f}", fontsize=9
        )
    ax.set_xlabel("share on instruction + constraint")
    ax.set_ylabel("adherence rate")
    ax.set_ylim(-0.05, 1.05)
    return _png(fig)


def gallery_images(results: list[dict]) -> list[tuple[str, str, str, str]]:
    """(task, structure, model, png) for every stored gallery attribution."""
    from ..attribution import Attribution
    from ..render.heatmap import heatmap_figure

    out = []
    for r in results:
        stored = r["payload"].get("attribution")
        if not stored:
            continue
        attr = Attribution.from_dict(stored)
        if attr.matrix is None:
            continue
        fig = heatmap_figure(attr, title=f"{r['structure']} · {r['model']}")
        out.append((r["task"], r["structure"], r["model"], _png(fig)))
    return out
