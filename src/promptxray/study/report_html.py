"""The study's self-contained HTML page: one section per table, with its figure and reading.

No network and no scripts: figures are inlined PNGs, so the file can be mailed or
archived and opens the same anywhere.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from .figures import (
    adherence_figure,
    gallery_images,
    profile_figure,
    shares_figure,
    shift_figure,
)
from .measures import POSITION_BINS
from .readings import read_adherence, read_profile, read_shares, read_shift
from .spec import StudyRow
from .tables import (
    adherence_correlation,
    adherence_table,
    check_table,
    fmt_ci,
    parts_present,
    profile_table,
    share_table,
    shift_table,
)

# The whole output's faithfulness check, per cell of the share table.
CHECK_HEADER = ("check deletion ratio", "faithful")


def _check_cells(check: dict[str, Any]) -> list[str]:
    """The check's mean deletion ratio (p(target) with the top units removed, per token)
    and the share of rows it calls faithful; – where no row of the cell has a check."""
    ratio, faithful = check["deletion_ratio"], check["faithful"]
    return [
        "–" if ratio is None else fmt_ci(ratio, pct=False),
        "–" if faithful is None else fmt_ci(faithful),
    ]


def _table_html(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _section(title: str, reading: str, image: str | None, table: str) -> str:
    img = f'<img alt="{html.escape(title)}" src="data:image/png;base64,{image}">' if image else ""
    return (
        f"<section><h2>{html.escape(title)}</h2><p class=reading>{html.escape(reading)}</p>"
        f"{img}{table}</section>"
    )


def render_html(rows: list[StudyRow], results: list[dict], config: Any, source: str) -> str:
    models = list(dict.fromkeys(r["model"] for r in results))
    tasks = list(dict.fromkeys(r.task for r in rows))
    structures = list(dict.fromkeys(r.structure for r in rows))
    shares = share_table(results)
    parts = parts_present(results)
    checks = check_table(results)  # the same cells, in the same order
    sections = []
    sections.append(
        _section(
            "Share of attribution per part",
            read_shares(shares),
            shares_figure(shares) if shares else None,
            _table_html(
                ["task", "structure", "model", "n", *parts, *CHECK_HEADER],
                [
                    [row["task"], row["structure"], row["model"], str(row["n"])]
                    + [fmt_ci(row[p]) if p in row else "–" for p in parts]
                    + _check_cells(check)
                    for row, check in zip(shares, checks, strict=True)
                ],
            ),
        )
    )
    profiles = profile_table(results)
    sections.append(
        _section(
            "Where in the prompt: attribution by relative position",
            read_profile(profiles),
            profile_figure(profiles) if profiles else None,
            _table_html(
                ["task", "model"] + [f"{i + 1}/10" for i in range(POSITION_BINS)],
                [
                    [task, model] + [f"{100 * v:.0f}%" for v in values]
                    for (task, model), values in profiles.items()
                ],
            ),
        )
    )
    shift = shift_table(results)
    sections.append(
        _section(
            "How importance shifts during generation (first vs second half of the output)",
            read_shift(shift),
            shift_figure(shift) if shift else None,
            _table_html(
                ["model", "part", "n", "first half", "second half", "second − first"],
                [
                    [
                        r["model"],
                        r["part"],
                        str(r["n"]),
                        fmt_ci(r["early"]),
                        fmt_ci(r["late"]),
                        fmt_ci(r["late_minus_early"]),
                    ]
                    for r in shift
                ],
            ),
        )
    )
    adherence = adherence_table(results)
    corr = adherence_correlation(results) if adherence else None
    sections.append(
        _section(
            "Adherence to the instructions, and the share on the instruction",
            read_adherence(adherence, corr),
            adherence_figure(corr) if corr and corr["groups"] else None,
            _table_html(
                ["task", "structure", "model", "n", "adherence", "instruction + constraint share"],
                [
                    [
                        r["task"],
                        r["structure"],
                        r["model"],
                        str(r["n"]),
                        fmt_ci(r["adherence"]),
                        fmt_ci(r["instruction_share"]) if r["instruction_share"] else "–",
                    ]
                    for r in adherence
                ],
            ),
        )
    )
    gallery = gallery_images(results)
    tiles = "".join(
        f'<figure><img alt="{html.escape(f"{t} {s} {m}")}" src="data:image/png;base64,{png}">'
        f"<figcaption>{html.escape(t)} · {html.escape(s)} · {html.escape(m)}</figcaption></figure>"
        for t, s, m, png in gallery
    )
    sections.append(
        "<section><h2>Gallery: the same prompt under each structure and model</h2>"
        "<p class=reading>"
        + html.escape(
            f"{len(gallery)} heatmaps (output token × prompt unit). Rule: for each task, the "
            "first group in file order among those with the most structures, on every model."
        )
        + f"</p><div class=gallery>{tiles}</div></section>"
    )
    summary = (
        f"{len(rows)} rows ({len(tasks)} tasks × {len(structures)} structures) from "
        f"{Path(source).name}; models: {', '.join(models)}; method {config.method}, "
        f"{config.granularity} units, ≤ {config.max_new_tokens} new tokens; "
        f"{len(results)} explained rows. Shares use |score|; intervals are 95% bootstrap "
        "intervals over the rows of a cell (none for one row). Check columns: p(target) per "
        "token with the explanation's top 3 units removed (fewer on shorter prompts) as a "
        "multiple of the unmasked one, and the share of rows the faithfulness check calls "
        "faithful."
    )
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;font-size:12px;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
        ".reading{font-weight:600}.gallery{display:flex;flex-wrap:wrap;gap:8px}"
        ".gallery figure{margin:0;max-width:340px}.gallery img{width:100%}"
    )
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>promptxray study</title><style>{style}</style></head><body>"
        f"<h1>promptxray study</h1><p>{html.escape(summary)}</p>"
        + "".join(sections)
        + "</body></html>"
    )
