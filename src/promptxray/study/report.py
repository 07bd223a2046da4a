"""The study's tables and its self-contained HTML report.

Everything here is computed from the stored rows (no model): tables as CSV next
to the SQLite store, figures as PNGs inlined in one HTML file (no network, no
scripts), and under every figure one sentence read off the numbers it draws, so
the reader gets the claim and the evidence together. Intervals are 95% percentile
bootstrap intervals over the rows of a cell (scipy), none for a single row.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .measures import POSITION_BINS
from .spec import OTHER, PART_NAMES, StudyRow

INSTRUCTION_PARTS = ("instruction", "constraint")
REPORT_NAME = "report.html"


# ----- numbers -------------------------------------------------------------------------
def mean_ci(values: list[float], seed: int = 0) -> tuple[float, float | None, float | None]:
    """Mean and a 95% percentile-bootstrap interval (None when fewer than 2 values or
    no spread)."""
    if not values:
        return float("nan"), None, None
    mean = statistics.fmean(values)
    if len(values) < 2 or max(values) == min(values):
        return mean, None, None
    from scipy.stats import bootstrap

    res = bootstrap(
        (values,),
        statistics.fmean,
        n_resamples=1000,
        method="percentile",
        random_state=seed,
        vectorized=False,
    )
    return mean, float(res.confidence_interval.low), float(res.confidence_interval.high)


def fmt_ci(stat: tuple[float, float | None, float | None], pct: bool = True) -> str:
    mean, lo, hi = stat
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.2f}")
    return f"{f(mean)} [{f(lo)}, {f(hi)}]" if lo is not None else f"{f(mean)}"


def parts_present(results: list[dict]) -> list[str]:
    seen = {p for r in results for p in r["payload"]["shares"]}
    return [p for p in (*PART_NAMES, OTHER) if p in seen]


def instruction_share(shares: dict[str, float] | None) -> float | None:
    """Share on the instruction and constraint parts together (None if the row has neither)."""
    if not shares or not any(p in shares for p in INSTRUCTION_PARTS):
        return None
    return sum(shares.get(p, 0.0) for p in INSTRUCTION_PARTS)


def cells(results: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    """Results by (task, structure, model), in file order."""
    out: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in results:
        out[(r["task"], r["structure"], r["model"])].append(r)
    return dict(out)


def share_table(results: list[dict]) -> list[dict[str, Any]]:
    """Mean share per part with its interval, per task x structure x model."""
    parts = parts_present(results)
    table = []
    for (task, structure, model), group in cells(results).items():
        row: dict[str, Any] = {"task": task, "structure": structure, "model": model}
        row["n"] = len(group)
        for p in parts:
            row[p] = mean_ci([r["payload"]["shares"].get(p, 0.0) for r in group])
        table.append(row)
    return table


def adherence_table(results: list[dict]) -> list[dict[str, Any]]:
    table = []
    for (task, structure, model), group in cells(results).items():
        checked = [r for r in group if r["payload"]["adherent"] is not None]
        if not checked:
            continue
        shares = [instruction_share(r["payload"]["shares"]) for r in checked]
        shares_known = [s for s in shares if s is not None]
        table.append(
            {
                "task": task,
                "structure": structure,
                "model": model,
                "n": len(checked),
                "adherence": mean_ci([float(r["payload"]["adherent"]) for r in checked]),
                "instruction_share": mean_ci(shares_known) if shares_known else None,
            }
        )
    return table


def shift_table(results: list[dict]) -> list[dict[str, Any]]:
    """Per model and part: share in the first half of the output vs the second, paired."""
    parts = parts_present(results)
    table = []
    for model in dict.fromkeys(r["model"] for r in results):
        mine = [r for r in results if r["model"] == model and r["payload"]["early"]]
        for p in parts:
            early = [r["payload"]["early"].get(p, 0.0) for r in mine]
            late = [r["payload"]["late"].get(p, 0.0) for r in mine]
            if not early:
                continue
            diff = [b - a for a, b in zip(early, late, strict=True)]
            earlier = [
                r["payload"]["late_on_earlier_output"]
                for r in mine
                if r["payload"].get("late_on_earlier_output") is not None
            ]
            table.append(
                {
                    "model": model,
                    "part": p,
                    "n": len(mine),
                    "early": mean_ci(early),
                    "late": mean_ci(late),
                    "late_minus_early": mean_ci(diff),
                    "earlier_output": mean_ci(earlier) if earlier and p == parts[0] else None,
                }
            )
    return table


def profile_table(results: list[dict]) -> dict[tuple[str, str], list[float]]:
    """Mean positional profile per (task, model)."""
    groups: dict[tuple[str, str], list[list[float]]] = defaultdict(list)
    for r in results:
        groups[(r["task"], r["model"])].append(r["payload"]["profile"])
    return {
        key: [statistics.fmean(p[i] for p in profiles) for i in range(POSITION_BINS)]
        for key, profiles in groups.items()
    }


def adherence_correlation(results: list[dict]) -> dict[str, Any] | None:
    """Row-level relation between instruction share and adherence (point-biserial r),
    and the group-level fit drawn in the scatter."""
    from scipy.stats import linregress, pointbiserialr

    pairs = [
        (s, float(r["payload"]["adherent"]))
        for r in results
        if r["payload"]["adherent"] is not None
        and (s := instruction_share(r["payload"]["shares"])) is not None
    ]
    groups = [
        (row["instruction_share"][0], row["adherence"][0])
        for row in adherence_table(results)
        if row["instruction_share"] is not None
    ]
    out: dict[str, Any] = {"rows": len(pairs), "groups": groups}
    xs = [p[0] for p in pairs]
    ys = [p[1] for p in pairs]
    if len(pairs) >= 3 and len(set(ys)) > 1 and len(set(xs)) > 1:
        res = pointbiserialr(ys, xs)
        out["r"], out["p"] = float(res.statistic), float(res.pvalue)
    if len(groups) >= 3 and len({g[0] for g in groups}) > 1 and len({g[1] for g in groups}) > 1:
        fit = linregress([g[0] for g in groups], [g[1] for g in groups])
        out["slope"], out["intercept"], out["group_r"] = fit.slope, fit.intercept, fit.rvalue
    return out


# ----- readings: one sentence from the numbers -------------------------------------------
def read_shares(table: list[dict[str, Any]]) -> str:
    if not table:
        return "No rows."
    parts = [p for p in PART_NAMES if any(p in row for row in table)]
    if not parts:
        return "The rows name no parts, so all attribution counts as other text."
    means = {p: statistics.fmean(row[p][0] for row in table if p in row) for p in parts}
    top = max(means, key=means.get)
    best = max((row for row in table if top in row), key=lambda row: row[top][0])
    sentence = (
        f"Averaged over cells, the {top} part holds the most attribution "
        f"({100 * means[top]:.0f}%), most under {best['task']} / {best['structure']} "
        f"on {best['model']} ({100 * best[top][0]:.0f}%)."
    )
    ratio = _structure_ratio(table, "constraint")
    if ratio:
        sentence += " " + ratio
    return sentence


def _structure_ratio(table: list[dict[str, Any]], part: str) -> str | None:
    by_structure: dict[str, list[float]] = defaultdict(list)
    for row in table:
        if part in row:
            by_structure[row["structure"]].append(row[part][0])
    if len(by_structure) < 2:
        return None
    means = {s: statistics.fmean(v) for s, v in by_structure.items()}
    hi = max(means, key=means.get)
    lo = min(means, key=means.get)
    if means[lo] <= 0:
        return None
    return (
        f"The {part} share is {means[hi] / means[lo]:.1f}× higher under {hi} "
        f"({100 * means[hi]:.0f}%) than under {lo} ({100 * means[lo]:.0f}%)."
    )


def read_profile(profiles: dict[tuple[str, str], list[float]]) -> str:
    if not profiles:
        return "No rows."
    sentences = []
    for model in dict.fromkeys(m for _, m in profiles):
        mean = [
            statistics.fmean(p[i] for (t, m), p in profiles.items() if m == model)
            for i in range(POSITION_BINS)
        ]
        peak = max(range(POSITION_BINS), key=lambda i: mean[i])
        last = sum(mean[POSITION_BINS // 2 :])
        sentences.append(
            f"on {model} attribution peaks in tenth {peak + 1} of the prompt "
            f"({100 * mean[peak]:.0f}%) and the second half holds {100 * last:.0f}%"
        )
    return "Averaged over tasks, " + "; ".join(sentences) + "."


def read_shift(table: list[dict[str, Any]]) -> str:
    rows = [r for r in table if r["part"] != OTHER]
    if not rows:
        return "No output had two tokens or more, so nothing shifts."
    biggest = max(rows, key=lambda r: abs(r["late_minus_early"][0]))
    mean, lo, hi = biggest["late_minus_early"]
    direction = "rises" if mean > 0 else "falls"
    sure = (
        "an interval that excludes zero"
        if lo is not None and (lo > 0 or hi < 0)
        else "an interval that contains zero"
    )
    sentence = (
        f"The largest shift: on {biggest['model']} the {biggest['part']} share {direction} "
        f"from {100 * biggest['early'][0]:.0f}% (first half of the output) to "
        f"{100 * biggest['late'][0]:.0f}% (second half), {100 * mean:+.1f} points with {sure} "
        f"(n = {biggest['n']})."
    )
    on_output = [r for r in table if r.get("earlier_output")]
    if on_output:
        sentence += (
            " The second half also draws "
            + ", ".join(f"{100 * r['earlier_output'][0]:.0f}% on {r['model']}" for r in on_output)
            + " of its attribution from the output written before it."
        )
    return sentence


def read_adherence(table: list[dict[str, Any]], corr: dict[str, Any] | None) -> str:
    if not table:
        return "No row has adherence checks."
    best = max(table, key=lambda r: r["adherence"][0])
    worst = min(table, key=lambda r: r["adherence"][0])
    if best["adherence"][0] == worst["adherence"][0]:
        sentence = f"Adherence is {100 * best['adherence'][0]:.0f}% in every cell"
        if corr is not None:
            sentence += ", so nothing varies to relate it to the instruction share"
        return sentence + "."
    sentence = (
        f"Adherence ranges from {100 * worst['adherence'][0]:.0f}% "
        f"({worst['task']} / {worst['structure']} on {worst['model']}) to "
        f"{100 * best['adherence'][0]:.0f}% ({best['task']} / {best['structure']} on "
        f"{best['model']})"
    )
    if corr and "r" in corr:
        sentence += (
            f"; per row, instruction+constraint share and adherence correlate with "
            f"r = {corr['r']:+.2f} (p = {corr['p']:.2g}, n = {corr['rows']})"
        )
        if corr["p"] >= 0.05:
            sentence += ", too weak to tell from no relation"
    elif corr is not None:
        sentence += "; too few or too uniform rows to correlate share and adherence"
    return sentence + "."


# ----- figures -------------------------------------------------------------------------
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


# ----- files ---------------------------------------------------------------------------
def _write_csv(path: Path, header: list[str], rows: Iterable[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _ci_cells(stat: tuple[float, float | None, float | None] | None) -> list[Any]:
    if stat is None:
        return ["", "", ""]
    return [
        round(stat[0], 6),
        "" if stat[1] is None else round(stat[1], 6),
        "" if stat[2] is None else round(stat[2], 6),
    ]


def write_tables(rows: list[StudyRow], results: list[dict], out: Path) -> list[Path]:
    parts = parts_present(results)
    files = [
        _write_csv(
            out / "rows.csv",
            ["row", "task", "structure", "group", "model", "adherent", "output_tokens"]
            + [f"share_{p}" for p in parts]
            + ["output"],
            (
                [
                    r["row_key"],
                    r["task"],
                    r["structure"],
                    r["grp"],
                    r["model"],
                    r["payload"]["adherent"],
                    r["payload"]["output_tokens"],
                ]
                + [round(r["payload"]["shares"].get(p, 0.0), 6) for p in parts]
                + [r["payload"]["output"]]
                for r in results
            ),
        )
    ]
    shares = share_table(results)
    files.append(
        _write_csv(
            out / "part_shares.csv",
            ["task", "structure", "model", "n"]
            + [f"{p}_{s}" for p in parts for s in ("mean", "low", "high")],
            (
                [row["task"], row["structure"], row["model"], row["n"]]
                + [c for p in parts for c in _ci_cells(row.get(p))]
                for row in shares
            ),
        )
    )
    files.append(
        _write_csv(
            out / "adherence.csv",
            [
                "task",
                "structure",
                "model",
                "n",
                "adherence_mean",
                "adherence_low",
                "adherence_high",
                "instruction_share_mean",
                "instruction_share_low",
                "instruction_share_high",
            ],
            (
                [row["task"], row["structure"], row["model"], row["n"]]
                + _ci_cells(row["adherence"])
                + _ci_cells(row["instruction_share"])
                for row in adherence_table(results)
            ),
        )
    )
    files.append(
        _write_csv(
            out / "shift.csv",
            [
                "model",
                "part",
                "n",
                "early_mean",
                "early_low",
                "early_high",
                "late_mean",
                "late_low",
                "late_high",
                "diff_mean",
                "diff_low",
                "diff_high",
            ],
            (
                [row["model"], row["part"], row["n"]]
                + _ci_cells(row["early"])
                + _ci_cells(row["late"])
                + _ci_cells(row["late_minus_early"])
                for row in shift_table(results)
            ),
        )
    )
    files.append(
        _write_csv(
            out / "profile.csv",
            ["task", "model"] + [f"tenth_{i + 1}" for i in range(POSITION_BINS)],
            (
                [task, model] + [round(v, 6) for v in values]
                for (task, model), values in profile_table(results).items()
            ),
        )
    )
    return files


def write_report(
    rows: list[StudyRow], results: list[dict], config: Any, out: Path, source: str
) -> list[Path]:
    """Write the CSV tables and report.html into `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    files = write_tables(rows, results, out)
    page = render_html(rows, results, config, source)
    path = out / REPORT_NAME
    path.write_text(page, encoding="utf-8")
    return [*files, path]


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
    sections = []
    sections.append(
        _section(
            "Share of attribution per part",
            read_shares(shares),
            shares_figure(shares) if shares else None,
            _table_html(
                ["task", "structure", "model", "n", *parts],
                [
                    [row["task"], row["structure"], row["model"], str(row["n"])]
                    + [fmt_ci(row[p]) if p in row else "–" for p in parts]
                    for row in shares
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
        "intervals over the rows of a cell (none for one row)."
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
