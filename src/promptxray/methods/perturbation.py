"""Perturbation methods: leave_one_out (mask each unit, watch the target) and random (the control).

Both work on whole units at the chosen granularity (token, word, sentence, ...)
and record the masking operator, so the evaluation masks the same way.
"""

from __future__ import annotations

import hashlib
import random as _random
from dataclasses import replace
from typing import Literal

import torch
from pydantic import Field

from ..masking import DEFAULT_OPERATOR, Operator, mask_context
from ..model import LanguageModel
from ..record import MaskedScores
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
from .coarse import (
    coarse_members,
    coarse_pass,
    coarse_pass_cost,
    masked_drops,
    sizes,
    strongest,
)
from .refinement import budget_prompts, refine


class LeaveOneOutParams(MethodParams):
    masking: Operator = Field(DEFAULT_OPERATOR, description="How a unit is removed.")
    batch_size: int = Field(
        16, ge=1, le=4096, description="Masked prompts per batched forward (memory only)."
    )
    coarse: Literal["none", "sentence", "line", "paragraph"] = Field(
        "none",
        description=(
            "Hierarchical: mask these coarser units first, then refine only the strongest "
            "down to the units asked for (none: exact, every unit masked)."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )
    refine: int = Field(
        0,
        ge=0,
        le=100_000,
        description=(
            "Hierarchical: at least this many of the strongest coarse units (by |score|) are "
            "refined, whatever the bound and budget say; the units of coarse units left "
            "unrefined inherit an equal share of their coarse unit's score."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )
    top: int = Field(
        5,
        ge=0,
        le=100_000,
        description=(
            "Hierarchical: the top k the refinement protects: coarse units are refined, "
            "strongest bound first, while one could still hold a unit above the k-th "
            "strongest |score| found (0: only the `refine` strongest, the fixed rule)."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )
    slack: float = Field(
        1.0,
        ge=0.0,
        le=1e6,
        description=(
            "Hierarchical: a unit's |score| is taken to be at most slack x its coarse "
            "unit's drops summed in magnitude over the target tokens (the bound); larger "
            "refines more."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )
    budget: float = Field(
        0.3,
        gt=0.0,
        le=2.0,
        description=(
            "Hierarchical: past the `refine` strongest, refining stops before the run "
            "scores more than this share of the prompts exact leave-one-out scores "
            "(1 + units); 2: no limit."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )


class RandomParams(MethodParams):
    seed: int = Field(0, description="Mixed with the prompt text: same prompt, same scores.")
    masking: Operator = Field(
        DEFAULT_OPERATOR,
        description="Not used to score; recorded so the evaluation masks as the compared methods.",
    )


@register(
    "leave_one_out",
    Family.PERTURBATION,
    params=LeaveOneOutParams,
    aggregation=Aggregation.FIXED,
    signed=True,
    description=(
        "log p(target) minus log p(target) with the unit masked (positive = the unit "
        "supports the target); defined only on the units it masked."
    ),
    scores_unmasked=True,
)
def leave_one_out(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: LeaveOneOutParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    """Score each unit by how much the target's log-probability drops without it.

    One scoring run gives per-target-token log-probs for every variant, so the
    target-token x unit matrix costs nothing extra and is always returned:
    matrix[j][i] = log p(y_j | x, y_<j) - log p(y_j | x without unit i, y_<j), and
    a unit's score is its column sum.
    """
    if params.coarse == "none":
        singles = [[i] for i in range(len(units))]
        full, drop = masked_drops(
            lm, problem, units, singles, params.masking, params.batch_size, progress
        )
        return MethodOutput(
            scores=drop.sum(1).tolist(),
            matrix=drop.T.tolist(),
            masked=MaskedScores(float(full.sum()), variants_scored=len(units) + 1),
        )
    return _hierarchical(lm, problem, units, params, progress)


def _hierarchical(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: LeaveOneOutParams,
    progress: ProgressFn | None,
) -> MethodOutput:
    """Leave-one-out on coarse units, then exact leave-one-out inside those that could
    hold one of the `top` strongest units (see `refinement`).

    Every coarse unit is masked once; the `refine` strongest by |score| have each of
    their units masked exactly, and then more, strongest bound first, while one could
    still hold a unit above the k-th strongest exact |score| and the budget allows.
    The units of the other coarse units inherit an equal share of their coarse unit's
    score: an estimate, listed as such (`refined` holds the exactly scored units). A
    coarse unit holding one unit is exact already.
    """
    found = coarse_pass(
        lm, problem, units, params.coarse, params.masking, params.batch_size, progress
    )
    members = found.members

    def score_units(chosen: list[int]) -> torch.Tensor:
        _, drops = masked_drops(
            lm,
            problem,
            units,
            [[i] for i in chosen],
            params.masking,
            params.batch_size,
            progress,
            found.full,
        )
        return drops

    budget = budget_prompts(params.budget, len(units))
    done = refine(
        members,
        found.scores,
        [params.slack * spread for spread in found.spread],
        score_units,
        minimum=[c for c in found.strongest(params.refine) if len(members[c]) > 1],
        top=params.top,
        budget=budget,
        spent=1 + len(members),
        batch_size=params.batch_size,
        n_rows=found.full.shape[0],
    )
    drop = found.shared_rows(len(units))
    if done.units:
        drop[done.units] = done.drops
    refined = sorted(done.units + [g[0] for g in members if len(g) == 1])
    hierarchy = replace(
        found.hierarchy(len(done.order), refined),
        top=params.top,
        slack=params.slack,
        budget=budget,
        threshold=done.threshold,
        rounds=done.rounds,
        coarse_order=done.order,
        coarse_bounds=done.bounds,
        coarse_status=done.status,
    )
    return MethodOutput(
        scores=drop.sum(1).tolist(),
        matrix=drop.T.tolist(),
        masked=MaskedScores(
            float(found.full.sum()), variants_scored=1 + len(members) + len(done.units)
        ),
        hierarchy=hierarchy,
    )


@register(
    "random",
    Family.PERTURBATION,
    params=RandomParams,
    aggregation=Aggregation.FIXED,
    signed=False,
    description="Uniform random scores in [0, 1), seeded by (seed, prompt): the control to beat.",
)
def random_scores(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: RandomParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    """Random scores: the same (seed, prompt) gives the same scores, another prompt others.

    Seeding from the seed alone would hand every prompt of the same length the same
    "random" positions, so a control that favours, say, the third word everywhere
    would not be random across a data set.
    """
    rng = _random.Random(random_seed(params.seed, problem))
    return MethodOutput(scores=[rng.random() for _ in units])


def random_seed(seed: int, problem: Problem) -> int:
    """A seed mixed from the user's seed and everything the user wrote (prompt and system)."""
    text = f"{seed}\0{problem.encoding.system_prompt or ''}\0{problem.encoding.prompt}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


@predicts("leave_one_out")
def leave_one_out_cost(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: LeaveOneOutParams,
    matrix: bool,
) -> Cost:
    """Exact: the unmasked prompt and one variant per unit in one prefix-shared run.

    Hierarchical (`coarse`): the coarse run, then at most the units of the `refine`
    largest coarse units that hold more than one unit, and, with `top`, more units
    up to the budget, in at most one scoring run per full batch of them: an upper
    bound, since which coarse units are refined depends on their scores.
    """
    masking, batch_size = params.masking, params.batch_size
    full = mask_context(lm, problem, units, [], masking)
    if params.coarse == "none":
        singles = [mask_context(lm, problem, units, [i], masking) for i in range(len(units))]
        return quantity.rows_cost(lm, problem, [full, *singles], batch_size, full)
    groups = coarse_members(problem, units, params.coarse)
    first = coarse_pass_cost(lm, problem, units, groups, masking, batch_size)
    # The `refine` largest coarse units bound the ones refined (one unit: exact already).
    by_size = [c for c in strongest(groups, sizes(groups), len(groups)) if len(groups[c]) > 1]
    least = [c for c in strongest(groups, sizes(groups), params.refine) if len(groups[c]) > 1]
    fine = [i for c in least for i in groups[c]]
    runs = 1 if fine else 0
    if params.top > 0:
        room = budget_prompts(params.budget, len(units)) - 1 - len(groups)
        rest = [i for c in by_size if c not in least for i in groups[c]]
        # the fewest units the `refine` strongest can hold leave the most room for
        # more runs, each of a full batch but the last
        singles_first = len(groups) - len(by_size)
        fewest = sum(
            sorted(len(groups[c]) for c in by_size)[: max(0, params.refine - singles_first)]
        )
        more = min(sum(len(groups[c]) for c in by_size) - fewest, max(0, room - fewest))
        runs += -(-more // batch_size)
        fine += rest[: max(0, room - len(fine))]
    singles = [mask_context(lm, problem, units, [i], masking) for i in fine]
    second = quantity.rows_cost(lm, problem, singles, batch_size, full)
    if runs > 1 or len(fine) < sum(len(groups[c]) for c in by_size):
        # Other units than those predicted may be refined, in several runs: each run
        # has its own shared prefix, and batches (of rows within 4/3 of each other's
        # length) no fuller than one row each.
        prefixes = max(0, runs - 1) * len(quantity.parts(problem))
        sequences = second.forward_sequences + prefixes
        second = Cost(
            sequences, sequences, 0, -(-4 * second.token_rows // 3) + prefixes * len(full.ids)
        )
    return (first + second).bound()


@predicts("random")
def random_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: RandomParams, matrix: bool
) -> Cost:
    """Random scores touch no model."""
    return Cost(0, 0, 0, 0)
