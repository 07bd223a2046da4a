"""xprompt's budgeted search for the k units whose joint masking lowers L most.

Every masked prompt it scores counts against `budget` (the unmasked prompt
included), scores are remembered, and batches share the KV cache of the prefix
they have in common (all three are the `Objective`'s). In order:

1. *The anytime schedule* (`joint_schedule`): the gradient's top-k |g| set first
   (what the paper starts from), then one k-set per pass, each proposed from an
   additive surrogate fitted to every set scored so far (its posterior mean for the
   first n / 2 passes, then Thompson draws): a swap neighbour of the best set or the
   top k under the surrogate. Every pass can improve the best,
   and the schedule is a fixed sequence that the budget truncates, so more budget
   never ends on a worse set.
2. *Ranking.* The chosen set comes first, ordered by each unit's marginal
   contribution L(S \\ {u}) − L(S) (its leave-one-out sets are reserved in the
   budget); the other units follow by their leave-one-out drop when the budget
   leaves room to score them after the search has scored every k-set, else by the
   surrogate's estimate of their drop (the additive model fitted to every scored set).
   So "mask top-k", comprehensiveness and sufficiency mean something for xprompt too.
3. *Every k up to `k_max`* (optional): the schedule runs for each size 1..k_max in
   turn, each with `budget` new passes and all sharing the scored sets (the
   surrogate learns from every size), and the best set of each size is recorded.

`strategy="exhaustive"` scores every k-set instead (refused above
`EXHAUSTIVE_LIMIT` sets): the optimum, for tests and benchmarks.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import numpy as np
from pydantic import Field

from ..errors import InvalidParameterError
from ..masking import DEFAULT_OPERATOR, Operator, mask_context
from ..model import LanguageModel
from ..record import Search, StartSet
from ..segments import Unit
from ..targets import Problem
from . import quantity
from .base import KEYED_WHEN_SET, Cost, MethodOutput, ProgressFn
from .joint_interactions import interactions_after_search, interactions_cost
from .joint_objective import (
    BudgetSpent,
    JointParams,
    Objective,
    Units,
    gradient_cost,
    unit_gradient,
)
from .joint_schedule import Surrogate, gradient_start, run_schedule

# The most k-sets the exhaustive strategy will score (C(20, 3) = 1140, C(30, 3) = 4060).
EXHAUSTIVE_LIMIT = 5000


class XPromptParams(JointParams):
    budget: int | None = Field(
        None,
        ge=2,
        le=1_000_000,
        description=(
            "Most prompts scored, the unmasked one included (default: twice "
            "leave-one-out's count, 2 (n + 1); exhaustive: all it needs); with k_max, "
            "per set size."
        ),
    )
    strategy: Literal["search", "exhaustive"] = Field(
        "search",
        description="search: the anytime schedule (gradient start, surrogate-guided swaps); "
        "exhaustive: every k-set.",
    )
    k_max: int | None = Field(
        None,
        ge=1,
        le=1000,
        description=(
            "Also find the best set of every size 1..k_max (at least k) in the same search, "
            "reusing every scored set: the joint deletion curve. Costs up to k_max budgets."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )
    interactions: int = Field(
        0,
        ge=0,
        le=100_000,
        description=(
            "Extra prompts scored (at most n, outside the budget) to measure how the top units "
            "interact in pairs; 0: only from the sets the search scored."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
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

    def sizes(self) -> list[int]:
        """The set sizes searched: k alone, or 1..k_max."""
        return [self.k] if self.k_max is None else list(range(1, self.k_max + 1))

    def check_units(self, n_units: int) -> None:
        super().check_units(n_units)
        if self.k_max is not None and not self.k <= self.k_max <= n_units:
            raise InvalidParameterError(
                f"k_max = {self.k_max} must lie between k = {self.k} and the prompt's "
                f"{n_units} units.",
                param="k_max",
            )
        if self.k_max is not None and self.strategy == "exhaustive":
            raise InvalidParameterError("k_max works with strategy=search only.", param="k_max")


def initial_selection(gradient: list[float], k: int) -> list[int]:
    """The k units with the largest |dL/dm|: the gradient's guess at what matters most.

    Masking moves m_u from 1 all the way to 0 (and `delete` is not even on that
    line), far outside where the first-order term is accurate: on the joint
    benchmark's prompts the optimum's units rank higher by |g| than by the signed g
    that the first-order drop would use. So, as in the paper, the magnitude is the
    evidence. Ties go to the earlier unit.
    """
    return sorted(gradient_start(gradient, k))


def run_search(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: XPromptParams,
    progress: ProgressFn | None,
) -> MethodOutput:
    """xprompt on `units`: the baseline, the search (or every k-set), then the ranking.

    The result's `search` records what the search did (passes per phase, the
    trajectory, the best set of every size with k_max), so a benchmark or a user can
    see where the budget went.
    """
    n, k = len(units), params.k
    params.check_units(n)
    budget = params.budget_for(n)
    sizes = params.sizes()
    objective = Objective(
        lm,
        problem,
        units,
        params.masking,
        params.batch_size,
        k,
        budget * len(sizes),
        progress=progress,
    )
    phases: dict[str, int] = {}

    def phase(name: str, before: int) -> None:
        phases[name] = phases.get(name, 0) + objective.spent - before
        if progress:
            progress(min(objective.spent, objective.budget), objective.budget)

    (baseline,) = objective([frozenset()])
    phase("baseline", 0)
    gradient: list[float] | None = None
    best_by_k: dict[int, Units] = {}
    if params.strategy == "exhaustive":
        chosen, value = _exhaustive(objective, n, k)
        phase("exhaustive", 1)
        starts = {"exhaustive": chosen}
    else:
        gradient = unit_gradient(lm, problem, units).tolist()
        starts = {"gradient": gradient_start(gradient, k)}
        for size in sizes:
            before = objective.spent
            cap = budget - (1 if size == sizes[0] else 0)  # the baseline is the first size's
            try:
                best_by_k[size] = run_schedule(
                    objective, n, size, gradient, baseline, params.seed, cap, size == k
                )
            except BudgetSpent:
                raise InvalidParameterError(
                    "budget is too small to score even one k-set.", param="budget"
                ) from None
            phase("search" if size == k else f"search_k{size}", before)
            if size == k:  # the ranking's passes were reserved inside this size's budget
                _ranking_passes(objective, best_by_k[k], phase)
        chosen = best_by_k[k]
        value = objective.known[chosen]
    if params.strategy == "exhaustive":
        _ranking_passes(objective, chosen, phase)
    singles = _singles_if_affordable(objective, n, k, phase)
    inside = sorted(chosen)
    marginal = {
        u: objective.known[chosen - {u}] - value for u in inside if chosen - {u} in objective.known
    }
    evidence, kind = _single_evidence(objective, n, baseline, singles, gradient)
    selected = sorted(inside, key=lambda u: (-marginal.get(u, evidence[u]), u))
    scores = [marginal.get(u, evidence[u]) if u in chosen else evidence[u] for u in range(n)]
    output = MethodOutput(
        scores=scores,
        selected=selected,
        search=Search(
            objective=value,
            baseline_objective=baseline,
            log_prob_drop=baseline - value,
            start=min(starts, key=lambda name: (objective.known[starts[name]], name)),
            starts={name: StartSet(sorted(s), objective.known[s]) for name, s in starts.items()},
            budget=objective.budget,
            spent=objective.spent,
            passes_by_phase=phases,
            trajectory=objective.finite_trajectory(),
            marginal_contributions=[marginal.get(u) for u in selected],
            single_unit_evidence=kind,
            gradient=gradient,
            best_by_k=[
                StartSet(sorted(best_by_k[j]), objective.known[best_by_k[j]])
                for j in sorted(best_by_k)
            ]
            if params.k_max is not None
            else [],
        ),
    )
    # After the search is recorded, so that its `spent` excludes the extra passes.
    output.interactions = interactions_after_search(
        objective, selected, scores, params.interactions
    )
    return output


def _ranking_passes(objective: Objective, chosen: Units, phase) -> None:
    """L(S - u) for every u in the set, as far as the budget allows (marginal contributions)."""
    before = objective.spent
    objective(objective.fit([chosen - {u} for u in sorted(chosen)]), reference=chosen)
    phase("ranking", before)


def _singles_if_affordable(objective: Objective, n: int, k: int, phase) -> bool:
    """Leave-one-out for the ranking of the other units, when the budget has room for it
    after the search stopped early (every k-set scored); True when every single is known."""
    singles = [frozenset({u}) for u in range(n)]
    missing = objective.unknown(singles)
    if missing and k > 1 and len(missing) <= objective.left:
        before = objective.spent
        objective(missing, reference=frozenset())
        phase("leave_one_out", before)
    return not objective.unknown(singles)


def _single_evidence(
    objective: Objective,
    n: int,
    baseline: float,
    singles: bool,
    gradient: list[float] | None,
) -> tuple[list[float], str]:
    """Each unit's single-unit evidence: its leave-one-out drop when every single was
    scored, else the additive surrogate's estimate of its drop (fitted to every scored
    set, prior 0), else (exhaustive with no singles) nothing."""
    if singles:
        return [baseline - objective.known[frozenset({u})] for u in range(n)], "leave_one_out"
    if gradient is None:
        return [0.0] * n, "none"
    scale = max(abs(baseline - objective.best) / objective.k, 1e-3)
    mean, _ = Surrogate(n, baseline, np.zeros(n), scale).posterior(objective.known)
    return [float(v) for v in mean], "surrogate"


def _exhaustive(objective: Objective, n: int, k: int) -> tuple[Units, float]:
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
    return sets[best], values[best]


def search_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: XPromptParams
) -> Cost:
    """An upper bound: the search stops early once every k-set is scored.

    A pass is one masked prompt scored (the unmasked one included); the search spends
    at most `budget` of them, and with `k_max` at most `budget` per set size, so
    k_max budgets in all. The schedule scores one proposal per call; a call with two
    or more new prompts (exhaustive, the ranking, leave-one-out) may add one forward
    of the shared prefix, and such calls spend at least two, so the forwards are at
    most budget + (budget - 1) // 2. The search adds one forward and one backward for
    the gradient. Seconds: the budget at leave-one-out's average tokens per prompt.
    """
    budget = params.budget_for(len(units)) * len(params.sizes())
    searching = params.strategy == "search"
    sequences = budget + (budget - 1) // 2  # per part of the quantity
    singles = [mask_context(lm, problem, units, [i], params.masking) for i in range(len(units))]
    n_parts = len(quantity.parts(problem))
    per_prompt = quantity.rows_cost(lm, problem, singles, params.batch_size)
    tokens = per_prompt.token_rows * budget // max(1, per_prompt.forward_sequences // n_parts)
    gradient = gradient_cost(problem) if searching else Cost(0, 0, 0, 0)
    scored = sequences * n_parts
    pairs = interactions_cost(
        lm, problem, units, params.masking, params.batch_size, params.interactions
    )
    return (Cost(scored, scored, 0, tokens) + gradient + pairs).bound()
