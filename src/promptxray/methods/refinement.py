"""Which coarse units hierarchical leave-one-out looks into, and why it may skip the rest.

After the coarse pass every coarse unit has a drop per target token. AttriBoT's
hierarchy rests on a part mattering at most about as much as the whole around it (a
word rarely matters more than its sentence). We take that per target token: no unit
moves a target token's log-probability more than its coarse unit does, so no unit's
|score| exceeds its coarse unit's drops summed in magnitude (`CoarsePass.spread`),
times a `slack`. The sum of magnitudes, not |sum|, because a sentence's drops often
cancel over the target (|sum| near 0) while one of its words still moves some tokens.

Coarse units are refined (every unit of them scored exactly) in decreasing order of
that bound while one of them could still hold a unit above the k-th strongest exact
|score| found so far. Once the strongest remaining bound is at or below it, no
unrefined unit can enter the top k (under the bound), so the top k reported is exact
leave-one-out's; a budget of scored prompts may stop the refinement first, and the
result then says which coarse units it left and that the budget, not the bound, did.

Refining goes in rounds, one batched scoring run each, of at least `batch_size` units
(a full batch) unless fewer remain: one coarse unit at a time would stop at the very
first unit possible but pay one shared-prefix pass per unit and leave batches empty.
The rule is arithmetic around a `score_units` call, so it is tested on made-up drops.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

# Why a coarse unit ended as it did (per coarse unit, recorded in the result).
REFINED = "refined"
SINGLE = "one unit"  # a coarse unit of one unit: its coarse score is that unit's exact score
BELOW_BOUND = "bound"  # its bound is at or below the k-th strongest exact |score|
BUDGET = "budget"  # it could still hold a top-k unit, but the budget was spent
NOT_STRONGEST = "fixed"  # top = 0: only the `refine` strongest are refined


@dataclass(frozen=True)
class Refinement:
    """What the refinement did: `units` scored exactly (in scoring order) with their
    per-row drops `drops` [len(units), n_rows]; the coarse units refined in `order`;
    per coarse unit its `bounds` and `status`; the k-th strongest exact |score| when it
    stopped (`threshold`, None while fewer than k units were exact) and its `rounds`."""

    units: list[int]
    drops: torch.Tensor
    order: list[int]
    status: list[str]
    bounds: list[float]
    threshold: float | None
    rounds: int


def kth_strongest(values: list[float], k: int) -> float:
    """The k-th largest of `values`; -inf while there are fewer than k (any unit could
    still enter a top k that is not full)."""
    if k <= 0 or len(values) < k:
        return -math.inf
    return heapq.nlargest(k, values)[-1]


def refine(
    members: list[list[int]],
    coarse_scores: list[float],
    bounds: list[float],
    score_units: Callable[[list[int]], torch.Tensor],
    *,
    minimum: list[int],
    top: int,
    budget: int,
    spent: int,
    batch_size: int,
    n_rows: int,
) -> Refinement:
    """Refine the coarse units `minimum` (always), then, when `top` > 0, the others in
    decreasing order of their bound while it is above the k-th strongest exact |score|
    and scoring their units keeps the prompts scored (`spent` so far) within `budget`.

    `members[c]` are the units of coarse unit c, `coarse_scores[c]` its score and
    `bounds[c]` the most |score| one of its units is taken to reach; `score_units(units)`
    returns their per-row drops. A coarse unit of one unit is exact already (its coarse
    score is that unit's score) and never rescored.
    """
    status = [SINGLE if len(g) == 1 else "" for g in members]
    exact = [abs(coarse_scores[c]) for c, g in enumerate(members) if len(g) == 1]
    units: list[int] = []
    parts: list[torch.Tensor] = []
    order: list[int] = []

    def run(chosen: list[int]) -> None:
        batch = [i for c in chosen for i in members[c]]
        drops = score_units(batch)
        units.extend(batch)
        parts.append(drops)
        exact.extend(drops.sum(1).abs().tolist())
        order.extend(chosen)
        for c in chosen:
            status[c] = REFINED

    first = [c for c in minimum if not status[c]]
    if first:
        run(first)
        spent += sum(len(members[c]) for c in first)
    queue = sorted((c for c in range(len(members)) if not status[c]), key=lambda c: (-bounds[c], c))
    while top > 0 and queue:
        kth = kth_strongest(exact, top)
        chosen: list[int] = []
        size = 0
        for c in queue:
            if bounds[c] <= kth or spent + size + len(members[c]) > budget or size >= batch_size:
                break
            chosen.append(c)
            size += len(members[c])
        if not chosen:
            break
        run(chosen)
        spent += size
        queue = queue[len(chosen) :]
    kth = kth_strongest(exact, top)
    for c in queue:
        status[c] = NOT_STRONGEST if top <= 0 else BELOW_BOUND if bounds[c] <= kth else BUDGET
    return Refinement(
        units=units,
        drops=torch.cat(parts) if parts else torch.zeros(0, n_rows),
        order=order,
        status=status,
        bounds=bounds,
        threshold=None if kth == -math.inf else kth,
        rounds=len(parts),
    )


def budget_prompts(share: float, n_units: int) -> int:
    """The most prompts (unmasked and masked) a run may score: `share` of exact
    leave-one-out's 1 + `n_units`."""
    return math.floor(share * (n_units + 1) + 1e-9)
