"""Joint attribution: the k units whose *joint* masking lowers log p(target) most.

Single-unit methods miss units that matter only together ("publish" and "book":
masking either alone changes little, masking both changes the answer). Joint
attribution looks for the set S, |S| = k, minimising

    L(S) = log p(target | prompt with the units of S masked)   (summed over target tokens).

Two methods live here:

`xprompt` — our budgeted search. Every masked prompt it scores counts against
`budget` (the unmasked prompt included), scores are remembered, and batches share
the KV cache of the prefix they have in common. In order:

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

`xprompt_paper` — Algorithm 1 of Chang et al. (2024) as written, as the
reference: the k largest |g| as the start, then N iterations, each proposing one
swap (the unit to add drawn from softmax(g) over the unmasked units, the unit to
drop from softmax(g) over the masked ones, g = |dL/dm|), kept if it lowers
p(y); masking by zeroing the embeddings (m ⊙ x). We draw each side from the
softmax restricted to that side, which is what the paper's text describes (its
formula, read literally, would also put weight on the other side's entries).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable
from typing import Literal

import torch
from pydantic import Field

from ..errors import InvalidParameterError
from ..masking import DEFAULT_OPERATOR, MaskedContext, Operator, mask_context
from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem
from . import quantity
from .base import (
    KEYED_WHEN_SET,
    Aggregation,
    Cost,
    Family,
    MethodOutput,
    MethodParams,
    ProgressFn,
    predicts,
    register,
)
from .perturbation import coarse_members, masked_drops

# The most k-sets the exhaustive strategy will score (C(20, 3) = 1140, C(30, 3) = 4060).
EXHAUSTIVE_LIMIT = 5000

Units = frozenset[int]


class _JointParams(MethodParams):
    k: int = Field(3, ge=1, le=1000, description="Size of the unit set masked jointly.")
    seed: int = Field(0, description="Seed of the proposal draws.")
    batch_size: int = Field(
        16, ge=1, le=4096, description="Masked prompts per batched forward (memory only)."
    )

    def check_units(self, n_units: int) -> None:
        if self.k > n_units:
            raise InvalidParameterError(
                f"k = {self.k} but the prompt has only {n_units} units at this granularity; "
                f"choose k between 1 and {n_units} (or a finer granularity)."
            )


class XPromptParams(_JointParams):
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


class XPromptPaperParams(_JointParams):
    iterations: int = Field(200, ge=0, le=100_000, description="Swap iterations N.")
    masking: Operator = Field("zero", description="How a unit is removed (paper: zero).")


# ----- shared pieces -------------------------------------------------------------------------
def unit_gradient(lm: LanguageModel, problem: Problem, units: list[Unit]) -> torch.Tensor:
    """dL/dm_u for every unit at m = 1, where m_u multiplies the unit's input embeddings.

    L is the attributed quantity (the target's summed log-probability, minus the
    contrast's if any); one forward and one backward per part.
    """
    grad = torch.zeros(len(units))
    for part, sign in quantity.parts(problem):
        grad += sign * _part_unit_gradient(lm, part, units)
    return grad


def _part_unit_gradient(lm: LanguageModel, problem: Problem, units: list[Unit]) -> torch.Tensor:
    ids = torch.tensor([problem.ids], device=lm.device)
    owner = torch.full((len(problem.ids),), -1, dtype=torch.long)
    sources = problem.source_positions
    for u, unit in enumerate(units):
        owner[[sources[t] for t in unit.tokens]] = u
    owner = owner.to(lm.device)
    with lm.lock:
        base = lm.embed(ids).detach()
        m = torch.ones(len(units), device=lm.device, dtype=base.dtype, requires_grad=True)
        ones = torch.ones(len(problem.ids), device=lm.device, dtype=base.dtype)
        scale = torch.where(owner >= 0, m[owner.clamp(min=0)], ones)
        logprobs = lm.target_logprobs(
            ids, problem.target_start, inputs_embeds=base * scale[:, None]
        )
        (grad,) = torch.autograd.grad(logprobs.sum(), m)
        lm.count_backward()
    return grad.detach().float().cpu()


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


class BudgetSpent(Exception):
    """Raised inside the search when the next set would exceed the budget."""


class Objective:
    """L(S) for unit sets: scored in shared-prefix batches, remembered, counted, budgeted.

    `spent` counts every prompt scored (the unmasked one too); a set already known
    costs nothing. `trajectory` records (spent, best L so far) after every batch.
    """

    def __init__(
        self,
        lm: LanguageModel,
        problem: Problem,
        units: list[Unit],
        masking: str,
        batch_size: int,
        k: int,
        budget: int | None = None,
        memo: bool = True,
        progress: ProgressFn | None = None,
    ) -> None:
        self.lm, self.problem, self.units = lm, problem, units
        self.progress = progress
        self.masking, self.batch_size, self.k, self.budget = masking, batch_size, k, budget
        self.memo = memo
        self.known: dict[Units, float] = {}
        self.spent = 0
        self.best = math.inf  # the lowest L among the k-sets scored so far
        self.trajectory: list[tuple[int, float]] = []

    @property
    def left(self) -> int:
        return math.inf if self.budget is None else self.budget - self.spent  # type: ignore[return-value]

    def context(self, chosen: Iterable[int]) -> MaskedContext:
        return mask_context(self.lm, self.problem, self.units, sorted(chosen), self.masking)

    def unknown(self, sets: Iterable[Units]) -> list[Units]:
        if not self.memo:
            return list(dict.fromkeys(sets))
        return [s for s in dict.fromkeys(sets) if s not in self.known]

    def __call__(self, sets: list[Units], reference: Units | None = None) -> list[float]:
        """L of every set; raises BudgetSpent (scoring nothing) if the new ones do not fit."""
        new = self.unknown(sets)
        if len(new) > self.left:
            raise BudgetSpent
        if new:
            contexts = [self.context(s) for s in new]
            ref = self.context(reference) if reference is not None and len(new) > 1 else None
            logprobs = quantity.score_rows(
                self.lm,
                self.problem,
                contexts,
                self.batch_size,
                reference=ref,
                progress=self._batch_progress(),
            )
            for s, row in zip(new, logprobs, strict=True):
                self.known[s] = float(row.sum())
                if len(s) == self.k:
                    self.best = min(self.best, self.known[s])
            self.spent += len(new)
            self.trajectory.append((self.spent, self.best))
        return [self.known[s] for s in sets]

    def _batch_progress(self) -> ProgressFn | None:
        """Progress after every scored batch, not only every phase: the job's cancel
        check rides on it, and one phase (all singles) can be hundreds of prompts."""
        if self.progress is None or self.budget is None:
            return None
        spent, budget, report = self.spent, self.budget, self.progress
        return lambda done, _: report(min(spent + done, budget), budget)

    def fit(self, sets: list[Units]) -> list[Units]:
        """The longest prefix of `sets` whose unknown members fit in the budget."""
        out, cost, seen = [], 0, set()
        for s in sets:
            extra = 0 if s in self.known or s in seen else 1
            if cost + extra > self.left:
                break
            cost += extra
            seen.add(s)
            out.append(s)
        return out


# ----- xprompt: the budgeted search ------------------------------------------------------------
@register(
    "xprompt",
    Family.JOINT,
    params=XPromptParams,
    aggregation=Aggregation.FIXED,
    signed=True,
    description=(
        "The k units whose joint masking lowers log p(target) most: budgeted search "
        "(gradient and leave-one-out starts, greedy selection, batched swaps); the set "
        "first by marginal contribution, then the rest by leave-one-out."
    ),
    version=2,  # 2: |g| start, pair-evidence swaps sampled without replacement
)
def xprompt(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: XPromptParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    if params.coarse == "none":
        return _xprompt_search(lm, problem, units, params, progress)
    return _pruned(lm, problem, units, params, progress)


def _pruned(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: XPromptParams,
    progress: ProgressFn | None,
) -> MethodOutput:
    """xprompt inside the strongest coarse units only (AttriBoT's pruning for long prompts).

    Every coarse unit is masked once (as hierarchical leave-one-out does); the search
    then runs on the units of the `refine` strongest, and the other units keep an
    equal share of their coarse unit's drop, marked as not refined. The budget is
    the search's own for that many units.
    """
    members = coarse_members(problem, units, params.coarse)
    _, coarse_drop = masked_drops(
        lm, problem, units, members, params.masking, params.batch_size, progress
    )
    strength = coarse_drop.sum(1)
    candidates = _candidates(members, strength.abs().tolist(), params)
    inner = _xprompt_search(lm, problem, [units[i] for i in candidates], params, progress)
    scores = [0.0] * len(units)
    for group, drop in zip(members, strength.tolist(), strict=True):
        for i in group:
            scores[i] = drop / len(group)
    for i, score in zip(candidates, inner.scores, strict=True):
        scores[i] = score
    extra = dict(inner.extra)
    extra["refined"] = candidates
    extra["hierarchy"] = {
        "coarse": params.coarse,
        "coarse_units": len(members),
        "coarse_refined": sum(1 for g in members if g[0] in set(candidates)),
        "coarse_scores": strength.tolist(),
        "coarse_passes": 1 + len(members),
    }
    return MethodOutput(
        scores=scores,
        selected=[candidates[i] for i in inner.selected or []],
        extra=extra,
    )


def _candidates(
    members: list[list[int]], strength: list[float], params: XPromptParams
) -> list[int]:
    """The units of the `refine` strongest coarse units, and of the next ones while they
    hold fewer than k units; in reading order."""
    order = sorted(range(len(members)), key=lambda c: (-strength[c], c))
    chosen: list[int] = []
    for rank, c in enumerate(order):
        if rank >= params.refine and len(chosen) >= params.k:
            break
        chosen.extend(members[c])
    return sorted(chosen)


def _xprompt_search(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: XPromptParams,
    progress: ProgressFn | None,
) -> MethodOutput:
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
        chosen, value, start_won, singles, starts = _search(
            objective, n, k, gradient, params, phase
        )

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
        extra={
            "objective": value,
            "baseline_objective": baseline,
            "log_prob_drop": baseline - value,
            "start": start_won,
            "starts": {
                name: {"set": sorted(s), "objective": objective.known[s]}
                for name, s in starts.items()
            },
            "budget": budget,
            "spent": objective.spent,
            "passes_by_phase": phases,
            "trajectory": [[s, b] for s, b in objective.trajectory if math.isfinite(b)],
            "marginal_contributions": [marginal.get(u) for u in selected],
            "single_unit_evidence": "leave_one_out" if singles is not None else "gradient",
            "gradient": gradient,
        },
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
            f"above {EXHAUSTIVE_LIMIT}. Use strategy=search or fewer units."
        )
    if count > objective.left:
        raise InvalidParameterError(
            f"The exhaustive strategy needs {count + 1} scored prompts but budget is "
            f"{objective.budget}."
        )
    sets = [frozenset(c) for c in itertools.combinations(range(n), k)]
    values = objective(sets, reference=frozenset())
    best = min(range(len(sets)), key=lambda i: (values[i], sorted(sets[i])))
    return sets[best], values[best], "exhaustive"


def _search(
    objective: Objective,
    n: int,
    k: int,
    gradient: list[float],
    params: XPromptParams,
    phase,
) -> tuple[Units, float, str, dict[int, float] | None, dict[str, Units]]:
    """Starts, greedy, then swaps: (best set, its L, the start that won, singles, starts)."""
    empty: Units = frozenset()
    starts: dict[str, Units] = {"gradient": frozenset(initial_selection(gradient, k))}
    before = objective.spent
    try:
        objective([starts["gradient"]], reference=empty)
    except BudgetSpent:
        raise InvalidParameterError("budget is too small to score even one k-set.") from None
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


# ----- xprompt_paper: Algorithm 1 as published -------------------------------------------------
@register(
    "xprompt_paper",
    Family.JOINT,
    params=XPromptPaperParams,
    aggregation=Aggregation.FIXED,
    signed=False,
    description=(
        "XPrompt's Algorithm 1 as published (Chang et al. 2024): top-k |gradient| start, "
        "N single-swap iterations drawn from softmax(|g|), zero-embedding masking."
    ),
)
def xprompt_paper(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: XPromptPaperParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    n, k = len(units), params.k
    params.check_units(n)
    gradient = unit_gradient(lm, problem, units).tolist()
    g = [abs(v) for v in gradient]
    # As published: every iteration scores its proposal, even one seen before.
    objective = Objective(lm, problem, units, params.masking, params.batch_size, k, memo=False)
    (baseline,) = objective([frozenset()])
    chosen: Units = frozenset(sorted(range(n), key=lambda u: (-g[u], u))[:k])
    (value,) = objective([chosen], reference=frozenset())
    rng = random.Random(params.seed)
    top = max(g) if g else 0.0
    weight = [math.exp(v - top) for v in g]
    accepted = 0
    for step in range(params.iterations):
        outside = [u for u in range(n) if u not in chosen]
        if outside:
            inside = sorted(chosen)
            (add,) = rng.choices(outside, weights=[weight[u] for u in outside])
            (drop,) = rng.choices(inside, weights=[weight[u] for u in inside])
            proposal = (chosen - {drop}) | {add}
            (candidate,) = objective([proposal], reference=chosen)
            if candidate < value:
                chosen, value = proposal, candidate
                accepted += 1
        if progress:
            progress(step + 1, params.iterations)
    selected = sorted(chosen, key=lambda u: (-g[u], u))
    return MethodOutput(
        scores=[1.0 if u in chosen else 0.0 for u in range(n)],
        selected=selected,
        extra={
            "objective": value,
            "baseline_objective": baseline,
            "log_prob_drop": baseline - value,
            "spent": objective.spent,
            "accepted_swaps": accepted,
            "trajectory": [[s, b] for s, b in objective.trajectory if math.isfinite(b)],
            "gradient": gradient,
        },
    )


# ----- cost predictions (see `costs`) ----------------------------------------------------------
@predicts("xprompt")
def xprompt_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: XPromptParams, matrix: bool
) -> Cost:
    """With `coarse`: the coarse pass, then the search's bound on the largest candidate set
    its `refine` coarse units could give."""
    if params.coarse == "none":
        return _search_cost(lm, problem, units, params)
    members = coarse_members(problem, units, params.coarse)
    full = mask_context(lm, problem, units, [], params.masking)
    variants = [full] + [mask_context(lm, problem, units, g, params.masking) for g in members]
    first = quantity.rows_cost(lm, problem, variants, params.batch_size, full)
    largest = _candidates(members, [float(len(g)) for g in members], params)
    return (first + _search_cost(lm, problem, [units[i] for i in largest], params)).bound()


def _search_cost(
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
    search = params.strategy == "search"
    sequences = budget + (budget - 1) // 2  # per part of the quantity
    singles = [mask_context(lm, problem, units, [i], params.masking) for i in range(len(units))]
    n_parts = len(quantity.parts(problem))
    per_prompt = quantity.rows_cost(lm, problem, singles, params.batch_size)
    tokens = per_prompt.token_rows * budget // max(1, per_prompt.forward_sequences // n_parts)
    gradient = _gradient_cost(problem) if search else Cost(0, 0, 0, 0)
    scored = sequences * n_parts
    return (Cost(scored, scored, 0, tokens) + gradient).bound()


def _gradient_cost(problem: Problem) -> Cost:
    """`unit_gradient`: one forward and one backward a part."""
    cost = Cost(0, 0, 0, 0)
    for part, _ in quantity.parts(problem):
        cost = cost + Cost(1, 1, 1, len(part.ids), len(part.ids))
    return cost


@predicts("xprompt_paper")
def xprompt_paper_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: XPromptPaperParams, matrix: bool
) -> Cost:
    """Exact: the gradient, the baseline, the start set, then one prompt per iteration
    (none when every unit is in the set), each scored alone."""
    prompts = 2 + (params.iterations if len(units) > params.k else 0)
    cost = _gradient_cost(problem)
    for part, _ in quantity.parts(problem):
        cost = cost + Cost(prompts, prompts, 0, prompts * len(part.ids))
    return cost
