"""xprompt's budgeted search for the k units whose joint masking lowers L most.

Every masked prompt it scores counts against `budget` (the unmasked prompt
included), scores are remembered, and batches share the KV cache of the prefix
they have in common (all three are the `Objective`'s). In order:

1. *Starts.* One gradient g = dL/dm (m_u scales unit u's embeddings) gives the
   first start: the k largest |g_u| (masking takes m_u from 1 to 0, too far for the
   sign of a first-order term to be trusted; the magnitude ranks the optimum's
   units better on the benchmark prompts, and is what the paper uses). If the
   budget allows, every single unit is scored masked alone — that is
   leave-one-out, and also greedy's first round — and its top k is a second start.
2. *Greedy forward selection.* Round r adds to the chosen set the unit that, masked
   together with it, lowers L most. Each round scores the set plus every candidate
   in one batch. Candidates are the units ranked best by the evidence so far (all
   of them when the budget allows; otherwise the top of the ranking, sized so the
   rounds take about two thirds of what the starts left over). Each round re-ranks
   the units it scored by how they did *with* the set: pair evidence.
3. *Swap refinement* from the best start: each step scores a batch of B swaps (one
   unit out of S, one in) and keeps the best if it lowers L; it stops after
   `patience` steps without improvement or when the budget is spent. The B swaps
   are drawn without replacement among the neighbours not yet scored, with
   *rank-based* weights 1 / ((1 + rank in) (1 + rank out)): the unit to add by its
   rank in the latest evidence (greedy's pair evidence, else leave-one-out, else
   |g|), the unit to drop by its rank from the weakest marginal contribution.
   Unlike softmax(|g|), whose raw magnitudes make it nearly one-hot (the same
   proposal over and over), rank weights keep every unit reachable whatever the
   scale of the scores; drawing without replacement puts the likeliest swaps into
   even a small batch and never spends a pass on a repeat.
4. *Ranking.* The chosen set comes first, ordered by each unit's marginal
   contribution L(S \\ {u}) − L(S); the other units follow by their best
   single-unit evidence (their leave-one-out drop, or the gradient when singles
   were not affordable). So "mask top-k", comprehensiveness and sufficiency mean
   something for xprompt too.

`strategy="exhaustive"` scores every k-set instead (refused above
`EXHAUSTIVE_LIMIT` sets): the optimum, for tests and benchmarks.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from typing import Literal

from pydantic import Field

from ..errors import InvalidParameterError
from ..masking import DEFAULT_OPERATOR, Operator, mask_context
from ..model import LanguageModel
from ..record import Search, StartSet
from ..segments import Unit
from ..targets import Problem
from . import quantity
from .base import KEYED_WHEN_SET, Cost, MethodOutput, ProgressFn
from .joint_objective import (
    BudgetSpent,
    JointParams,
    Objective,
    Units,
    gradient_cost,
    unit_gradient,
)

# The most k-sets the exhaustive strategy will score (C(20, 3) = 1140, C(30, 3) = 4060).
EXHAUSTIVE_LIMIT = 5000

# Called after each phase with its name and `spent` before it.
PhaseFn = Callable[[str, int], None]


class XPromptParams(JointParams):
    budget: int | None = Field(
        None,
        ge=2,
        le=1_000_000,
        description=(
            "Most prompts scored, the unmasked one included (default: twice "
            "leave-one-out's count, 2 (n + 1); exhaustive: all it needs)."
        ),
    )
    strategy: Literal["search", "exhaustive"] = Field(
        "search", description="search: starts, greedy, swaps; exhaustive: every k-set."
    )
    proposals_per_step: int = Field(
        8, ge=1, le=256, description="Swaps proposed and scored together per refinement step."
    )
    patience: int = Field(
        2, ge=1, le=1000, description="Refinement steps without improvement before stopping."
    )
    masking: Operator = Field(DEFAULT_OPERATOR, description="How a unit is removed.")
    coarse: Literal["none", "sentence", "line", "paragraph"] = Field(
        "none",
        description=(
            "Candidate pruning for long prompts: mask each of these coarser units once and "
            "search only the units inside the `refine` strongest (none: search every unit)."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )
    refine: int = Field(
        3,
        ge=1,
        le=100_000,
        description=(
            "With `coarse`: how many of the strongest coarse units (by |leave-one-out "
            "drop|) the search looks inside (more if they hold fewer than k units)."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )

    def budget_for(self, n_units: int) -> int:
        """The budget given, or the default: 2 (n + 1); exhaustive: every set and the ranking."""
        if self.budget is not None:
            return self.budget
        if self.strategy == "exhaustive":
            return 1 + math.comb(n_units, self.k) + self.k
        return 2 * (n_units + 1)


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


def run_search(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: XPromptParams,
    progress: ProgressFn | None,
) -> MethodOutput:
    """xprompt on `units`: the baseline, the search (or every k-set), then the ranking.

    The result's `search` records what the search did (starts, passes per phase,
    trajectory), so a benchmark or a user can see where the budget went.
    """
    n, k = len(units), params.k
    params.check_units(n)
    budget = params.budget_for(n)
    objective = Objective(
        lm, problem, units, params.masking, params.batch_size, k, budget, progress=progress
    )
    phases: dict[str, int] = {}

    def phase(name: str, before: int) -> None:
        phases[name] = phases.get(name, 0) + objective.spent - before
        if progress:
            progress(min(objective.spent, budget), budget)

    empty: Units = frozenset()
    (baseline,) = objective([empty])
    phase("baseline", 0)

    if params.strategy == "exhaustive":
        chosen, value, start_won = _exhaustive(objective, n, k)
        phase("exhaustive", 1)
        singles, gradient, starts = None, None, {"exhaustive": chosen}
    else:
        gradient = unit_gradient(lm, problem, units).tolist()
        chosen, value, start_won, singles, starts = search(objective, n, k, gradient, params, phase)

    # Marginal contributions inside the set (ranking), as far as the budget allows.
    before = objective.spent
    inside = sorted(chosen)
    leave_out = [chosen - {u} for u in inside]
    values = objective(objective.fit(leave_out), reference=chosen)
    phase("ranking", before)
    marginal = {u: v - value for u, v in zip(inside, values, strict=False)}
    evidence = _single_evidence(n, baseline, singles, gradient)
    selected = sorted(inside, key=lambda u: (-marginal.get(u, evidence[u]), u))
    scores = [marginal.get(u, evidence[u]) if u in chosen else evidence[u] for u in range(n)]
    return MethodOutput(
        scores=scores,
        selected=selected,
        search=Search(
            objective=value,
            baseline_objective=baseline,
            log_prob_drop=baseline - value,
            start=start_won,
            starts={name: StartSet(sorted(s), objective.known[s]) for name, s in starts.items()},
            budget=budget,
            spent=objective.spent,
            passes_by_phase=phases,
            trajectory=objective.finite_trajectory(),
            marginal_contributions=[marginal.get(u) for u in selected],
            single_unit_evidence="leave_one_out" if singles is not None else "gradient",
            gradient=gradient,
        ),
    )


def _single_evidence(
    n: int, baseline: float, singles: dict[int, float] | None, gradient: list[float] | None
) -> list[float]:
    """Each unit's best single-unit evidence: its leave-one-out drop, else its gradient."""
    if singles is not None and len(singles) == n:
        return [baseline - singles[u] for u in range(n)]
    return list(gradient) if gradient is not None else [0.0] * n


def _exhaustive(objective: Objective, n: int, k: int) -> tuple[Units, float, str]:
    count = math.comb(n, k)
    if count > EXHAUSTIVE_LIMIT:
        raise InvalidParameterError(
            f"The exhaustive strategy would score C({n}, {k}) = {count} sets; it is refused "
            f"above {EXHAUSTIVE_LIMIT}. Use strategy=search or fewer units.",
            param="strategy",
        )
    if count > objective.left:
        raise InvalidParameterError(
            f"The exhaustive strategy needs {count + 1} scored prompts but budget is "
            f"{objective.budget}.",
            param="budget",
        )
    sets = [frozenset(c) for c in itertools.combinations(range(n), k)]
    values = objective(sets, reference=frozenset())
    best = min(range(len(sets)), key=lambda i: (values[i], sorted(sets[i])))
    return sets[best], values[best], "exhaustive"


def search(
    objective: Objective,
    n: int,
    k: int,
    gradient: list[float],
    params: XPromptParams,
    phase: PhaseFn,
) -> tuple[Units, float, str, dict[int, float] | None, dict[str, Units]]:
    """Starts, greedy, then swaps: (best set, its L, the start that won, singles, starts)."""
    empty: Units = frozenset()
    starts: dict[str, Units] = {"gradient": frozenset(initial_selection(gradient, k))}
    before = objective.spent
    try:
        objective([starts["gradient"]], reference=empty)
    except BudgetSpent:
        raise InvalidParameterError(
            "budget is too small to score even one k-set.", param="budget"
        ) from None
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
    params: XPromptParams,
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


def search_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: XPromptParams
) -> Cost:
    """An upper bound: the search stops early when patience runs out.

    Every scored prompt counts against the budget; a scoring call with two or more
    new prompts may add one forward of the shared prefix, and such calls spend at
    least two, so at most (budget - 1) // 2 of them follow the single baseline. The
    search adds one forward and one backward for the gradient. Seconds: the budget
    at leave-one-out's average tokens per prompt.
    """
    budget = params.budget_for(len(units))
    searching = params.strategy == "search"
    sequences = budget + (budget - 1) // 2  # per part of the quantity
    singles = [mask_context(lm, problem, units, [i], params.masking) for i in range(len(units))]
    n_parts = len(quantity.parts(problem))
    per_prompt = quantity.rows_cost(lm, problem, singles, params.batch_size)
    tokens = per_prompt.token_rows * budget // max(1, per_prompt.forward_sequences // n_parts)
    gradient = gradient_cost(problem) if searching else Cost(0, 0, 0, 0)
    scored = sequences * n_parts
    return (Cost(scored, scored, 0, tokens) + gradient).bound()
