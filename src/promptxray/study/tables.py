"""The study's numbers: per-cell tables with bootstrap intervals, and their CSV files.

Everything here is computed from the stored rows (no model). A cell is one task ×
structure × model; its values are means over the cell's rows with a 95%
percentile-bootstrap interval (`intervals.mean_interval`), none for a single row.
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..intervals import mean_interval
from .measures import POSITION_BINS
from .spec import OTHER, PART_NAMES, StudyRow

INSTRUCTION_PARTS = ("instruction", "constraint")
Stat = tuple[float, float | None, float | None]  # (mean, low, high)


def mean_ci(values: list[float], seed: int = 0) -> Stat:
    """Mean and a 95% percentile-bootstrap interval (None when fewer than 2 values or
    no spread: a cell of identical rows shows no interval)."""
    if not values:
        return float("nan"), None, None
    if len(values) < 2 or max(values) == min(values):
        return statistics.fmean(values), None, None
    return mean_interval(values, n_resamples=1000, seed=seed)


def fmt_ci(stat: Stat, pct: bool = True) -> str:
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


def row_check(result: dict) -> dict[str, Any] | None:
    """The faithfulness check of a row's whole-output explanation (None: a row stored
    before the check, or one explained without it)."""
    return result["payload"].get("check")


def check_table(results: list[dict]) -> list[dict[str, Any]]:
    """Per task x structure x model: the mean deletion ratio of the whole output's check
    and the share of rows it calls faithful, over the rows whose check could be computed."""
    table = []
    for (task, structure, model), group in cells(results).items():
        checks = [c for r in group if (c := row_check(r)) is not None]
        ratios = [c["deletion_ratio"] for c in checks if c.get("deletion_ratio") is not None]
        verdicts = [float(c["faithful"]) for c in checks if c.get("faithful") is not None]
        table.append(
            {
                "task": task,
                "structure": structure,
                "model": model,
                "n": len(verdicts),
                "deletion_ratio": mean_ci(ratios) if ratios else None,
                "faithful": mean_ci(verdicts) if verdicts else None,
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


# ----- files ---------------------------------------------------------------------------
def _write_csv(path: Path, header: list[str], rows: Iterable[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _ci_cells(stat: Stat | None) -> list[Any]:
    if stat is None:
        return ["", "", ""]
    return [
        round(stat[0], 6),
        "" if stat[1] is None else round(stat[1], 6),
        "" if stat[2] is None else round(stat[2], 6),
    ]


def _interval_csv(
    path: Path, table: list[dict[str, Any]], keys: list[str], stats: list[tuple[str, str]]
) -> Path:
    """One row per table row: its `keys`, then mean, low and high of each (column, field)
    of `stats` (empty cells where a row has no such interval)."""
    header = keys + [f"{name}_{end}" for name, _ in stats for end in ("mean", "low", "high")]
    return _write_csv(
        path,
        header,
        (
            [row[k] for k in keys] + [c for _, name in stats for c in _ci_cells(row.get(name))]
            for row in table
        ),
    )


def _check_cells(result: dict) -> list[Any]:
    """rows.csv's check columns: verdict, deletion ratio, LDS, faithful (empty: no check)."""
    check = row_check(result) or {}
    ratio, lds = check.get("deletion_ratio"), check.get("lds")
    return [
        check.get("verdict", ""),
        "" if ratio is None else round(ratio, 6),
        "" if lds is None else round(lds, 6),
        "" if check.get("faithful") is None else check["faithful"],
    ]


def write_tables(rows: list[StudyRow], results: list[dict], out: Path) -> list[Path]:
    """rows.csv (one line per explained row) and a CSV per table, into `out`."""
    parts = parts_present(results)
    cell = ["task", "structure", "model", "n"]
    check_header = ["check_verdict", "check_deletion_ratio", "check_lds", "check_faithful"]
    return [
        _write_csv(
            out / "rows.csv",
            ["row", "task", "structure", "group", "model", "adherent", "output_tokens"]
            + [f"share_{p}" for p in parts]
            + check_header
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
                + _check_cells(r)
                + [r["payload"]["output"]]
                for r in results
            ),
        ),
        _interval_csv(out / "part_shares.csv", share_table(results), cell, [(p, p) for p in parts]),
        _interval_csv(
            out / "adherence.csv",
            adherence_table(results),
            cell,
            [("adherence", "adherence"), ("instruction_share", "instruction_share")],
        ),
        _interval_csv(
            out / "check.csv",
            check_table(results),
            cell,
            [("deletion_ratio", "deletion_ratio"), ("faithful", "faithful")],
        ),
        _interval_csv(
            out / "shift.csv",
            shift_table(results),
            ["model", "part", "n"],
            [("early", "early"), ("late", "late"), ("diff", "late_minus_early")],
        ),
        _write_csv(
            out / "profile.csv",
            ["task", "model"] + [f"tenth_{i + 1}" for i in range(POSITION_BINS)],
            (
                [task, model] + [round(v, 6) for v in values]
                for (task, model), values in profile_table(results).items()
            ),
        ),
    ]
