"""What a study measures on one explained row: shares per part and per position.

A share is a part's attribution mass over the whole prompt's: the sum of |score|
of the units in the part divided by the sum over every source unit, so the shares
of a row (its named parts and `other`) sum to 1 whatever the method's scale. Using
|score| keeps signed methods comparable with grad_norm's magnitudes (a unit that
strongly lowers p(target) matters as much as one that raises it).
"""

from __future__ import annotations

from ..attribution import Attribution
from .spec import OTHER, PART_NAMES, StudyRow, part_of

POSITION_BINS = 10


def unit_parts(row: StudyRow, attribution: Attribution) -> list[str]:
    """The part of every unit of the attribution's current view."""
    return [part_of(row.parts, u.role, u.span) for u in attribution.units]


PROMPT_ROLES = ("user", "system")


def part_shares(row: StudyRow, attribution: Attribution) -> dict[str, float]:
    """Share of the prompt's |attribution| per part (named parts and `other`); sums to 1.

    Only prompt units count (user and system text): when the target is a later span
    of the output, the output before it is a source too, and it is reported apart
    (`earlier_output_share`) so that part shares compare across targets.
    """
    pairs = [
        (part, abs(score))
        for part, unit, score in zip(
            unit_parts(row, attribution), attribution.units, attribution.scores, strict=True
        )
        if unit.role in PROMPT_ROLES
    ]
    return _shares([p for p, _ in pairs], [m for _, m in pairs])


def earlier_output_share(attribution: Attribution) -> float:
    """Share of all |attribution| on the output written before the target."""
    total = sum(abs(s) for s in attribution.scores)
    earlier = sum(
        abs(s)
        for u, s in zip(attribution.units, attribution.scores, strict=True)
        if u.role not in PROMPT_ROLES
    )
    return earlier / total if total > 0 else 0.0


def _shares(parts: list[str], mass: list[float]) -> dict[str, float]:
    total = sum(mass)
    names = [p for p in (*PART_NAMES, OTHER) if p in parts]
    if total <= 0:
        return {p: 0.0 for p in names}
    return {p: sum(m for q, m in zip(parts, mass, strict=True) if q == p) / total for p in names}


def positional_profile(row: StudyRow, attribution: Attribution) -> list[float]:
    """Share of |attribution| in each tenth of the user prompt, by character position.

    A unit's position is its middle character over the prompt's length, so prompts
    of different lengths share one axis. System-prompt units are left out: the
    profile is about where in the prompt the model looks.
    """
    mass = [0.0] * POSITION_BINS
    length = max(1, len(row.prompt))
    for unit, score in zip(attribution.units, attribution.scores, strict=True):
        if unit.role != "user" or unit.span is None:
            continue
        middle = (unit.span[0] + unit.span[1]) / 2 / length
        mass[min(POSITION_BINS - 1, int(middle * POSITION_BINS))] += abs(score)
    total = sum(mass)
    return [m / total for m in mass] if total > 0 else mass
