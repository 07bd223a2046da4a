"""One sentence per report section, read off the numbers it shows.

Under every figure the report states the claim its numbers support (the biggest
share, the largest shift, how adherence relates to the instruction's share), so
the reader gets the claim and the evidence together, and a claim the numbers do
not support (an interval containing zero, p >= 0.05) says so.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from .measures import POSITION_BINS
from .spec import OTHER, PART_NAMES


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
