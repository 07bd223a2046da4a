"""xprompt's previous search (v2), kept for the joint benchmark only: old beside new.

Starts (the |g| top k, leave-one-out), greedy forward selection whose candidate pool
is sized by the budget, then batched swaps sampled without replacement with rank
weights, stopping after `patience` steps without improvement. Its pool depends on
the budget, so a larger budget could end on a worse set; v3's schedule (in
`promptxray.methods.joint_schedule`) replaced it. Run on a table by
`joint_tables.replay_v2`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from promptxray.methods.joint_objective import BudgetSpent, Objective, Units

PhaseFn = Callable[[str, int], None]


@dataclass(frozen=True)
class V2Params:
    """The v2 parameters the search read (its defaults)."""

    proposals_per_step: int = 8
    patience: int = 2
    seed: int = 0


def initial_selection(gradient: list[float], k: int) -> list[int]:
    """The k units with the largest |dL/dm|: the gradient's guess at what matters most.

    Masking moves m_u from 1 all the way to 0 (and `delete` is not even on that
    line), far outside where the first-order term is accurate: on the joint
    benchmark's prompts the optimum's units rank higher by |g| than by the signed g
    that the first-order drop would use. So, as in the paper, the magnitude is the
    evidence. Ties go to the earlier unit.
    """
    return sorted(magnitude_order(gradient)[:k])


def magnitude_order(gradient: list[float]) -> list[int]:
    """Units by |gradient|, largest first (ties: earlier unit first)."""
    return sorted(range(len(gradient)), key=lambda u: (-abs(gradient[u]), u))


def search(
    objective: Objective,
    n: int,
    k: int,
    gradient: list[float],
    params: V2Params,
    phase: PhaseFn,
) -> tuple[Units, float, str, dict[int, float] | None, dict[str, Units]]:
    """Starts, greedy, then swaps: (best set, its L, the start that won, singles, starts)."""
    empty: Units = frozenset()
    starts: dict[str, Units] = {"gradient": frozenset(initial_selection(gradient, k))}
    before = objective.spent
    try:
        objective([starts["gradient"]], reference=empty)
    except BudgetSpent:
        raise ValueError("budget is too small to score even one k-set.") from None
    phase("gradient_start", before)

    singles: dict[int, float] | None = None
    single_sets = [frozenset({u}) for u in range(n)]
    # Leave-one-out (= greedy round 1) only if it leaves room for its own top-k set.
    if len(objective.unknown(single_sets)) + 1 <= objective.left:
        before = objective.spent
        values = objective(single_sets, reference=empty)
        singles = dict(enumerate(values))
        by_drop = sorted(range(n), key=lambda u: (singles[u], u))  # lowest L first
        starts["leave_one_out"] = frozenset(by_drop[:k])
        objective([starts["leave_one_out"]], reference=empty)
        phase("leave_one_out", before)
        before = objective.spent
        greedy, evidence_order = _greedy(objective, n, k, by_drop)
        phase("greedy", before)
        if greedy is not None:
            starts["greedy"] = greedy
    else:
        evidence_order = magnitude_order(gradient)

    won = min(starts, key=lambda name: (objective.known[starts[name]], name))
    chosen = starts[won]
    value = objective.known[chosen]
    before = objective.spent
    chosen, value = _refine(objective, n, chosen, value, evidence_order, params)
    phase("swaps", before)
    return chosen, value, won, singles, starts


def _greedy(
    objective: Objective, n: int, k: int, by_drop: list[int]
) -> tuple[Units | None, list[int]]:
    """Forward selection from the best single: (the k-set or None if the budget ran out,
    the units ranked by the latest evidence).

    Rounds 2..k each score the set plus one candidate. With the budget for it every
    remaining unit is a candidate; otherwise the best-ranked ones, so the rounds
    take about two thirds of what is left (the rest goes to swaps and the ranking).
    The ranking starts as the single-unit order and each round re-ranks the units it
    scored by how much they lowered L *together with the set*: pair evidence, which
    is what a swap needs (a unit that only matters alongside others ranks low alone).
    """
    chosen: Units = frozenset({by_drop[0]})
    ranking = by_drop
    rounds = k - 1
    if rounds == 0:
        return chosen, ranking
    share = max(0, int((objective.left - k) * 2 / 3))
    # Candidates per round: pool - r for r = 1..rounds, summed <= share.
    pool = n
    while pool > k and sum(max(0, pool - r) for r in range(1, rounds + 1)) > share:
        pool -= 1
    for _ in range(rounds):
        candidates = [u for u in ranking[:pool] if u not in chosen]
        if not candidates:
            candidates = [u for u in ranking if u not in chosen][:1]
        sets = objective.fit([chosen | {u} for u in candidates])
        if not sets:
            return None, ranking
        values = objective(sets, reference=chosen)
        best = min(range(len(sets)), key=lambda i: (values[i], sorted(sets[i])))
        scored = {next(iter(s - chosen)): v for s, v in zip(sets, values, strict=True)}
        ranking = sorted(scored, key=lambda u: (scored[u], u)) + [
            u for u in ranking if u not in scored
        ]
        chosen = sets[best]
    return chosen, ranking


def _refine(
    objective: Objective,
    n: int,
    chosen: Units,
    value: float,
    evidence_order: list[int],
    params: V2Params,
) -> tuple[Units, float]:
    """Batched swap search with rank-based proposals; stops on patience or budget.

    Each step draws B distinct unscored neighbours (one unit out, one in) without
    replacement, with weight 1 / ((1 + rank of the unit added) (1 + rank of the
    unit dropped)): added units ranked by `evidence_order`, dropped ones from the
    weakest marginal contribution L(S - u) - L(S). Sampling without replacement
    (Efraimidis-Spirakis keys U^(1/w)) never spends a pass on a repeat and, unlike
    independent draws from flat weights, puts the likeliest swaps into a small
    batch first while every neighbour stays reachable.
    """
    rng = random.Random(params.seed)
    add_rank = {u: r for r, u in enumerate(evidence_order)}
    reserve = len(chosen)  # the ranking's leave-one-out-of-the-set passes come after
    stale = 0
    while stale < params.patience and objective.left > reserve:
        inside = sorted(chosen)
        # The unit to drop: weakest marginal contribution L(S - u) - L(S) first when known.
        drop_order = sorted(inside, key=lambda u: (objective.known.get(chosen - {u}, math.inf), u))
        drop_rank = {u: r for r, u in enumerate(drop_order)}
        keyed = []
        for drop in inside:
            for add in range(n):
                candidate = (chosen - {drop}) | {add}
                if add in chosen or candidate in objective.known:
                    continue
                weight = 1.0 / ((1 + add_rank[add]) * (1 + drop_rank[drop]))
                keyed.append((rng.random() ** (1.0 / weight), sorted(candidate), candidate))
        if not keyed:
            break  # every neighbour of the current set has been scored
        keyed.sort(key=lambda item: (-item[0], item[1]))
        want = min(params.proposals_per_step, objective.left - reserve)
        proposals = [candidate for *_, candidate in keyed[:want]]
        values = objective(proposals, reference=chosen)
        best = min(range(len(proposals)), key=lambda i: values[i])
        if values[best] < value:
            chosen, value = proposals[best], values[best]
            stale = 0
        else:
            stale += 1
    return chosen, value
