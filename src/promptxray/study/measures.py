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


def part_shares(row: StudyRow, attribution: Attribution) -> dict[str, float]:
    """Share of |attribution| per part (named parts of the row and `other`); sums to 1."""
    return _shares(unit_parts(row, attribution), [abs(s) for s in attribution.scores])


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
