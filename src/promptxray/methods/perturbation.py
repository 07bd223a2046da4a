"""Perturbation methods: leave_one_out (mask each unit, watch the target) and random (the control).

Both work on whole units at the chosen granularity (token, word, sentence, ...)
and record the masking operator, so the evaluation masks the same way.
"""

from __future__ import annotations

import hashlib
import random as _random

from pydantic import Field

from ..masking import DEFAULT_OPERATOR, Operator, mask_context
from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem
from .base import Aggregation, Family, MethodOutput, MethodParams, ProgressFn, register


class LeaveOneOutParams(MethodParams):
    masking: Operator = Field(DEFAULT_OPERATOR, description="How a unit is removed.")
    batch_size: int = Field(
        16, ge=1, le=4096, description="Masked prompts per batched forward (memory only)."
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
    masking, batch_size = params.masking, params.batch_size
    full = mask_context(lm, problem, units, [], masking)
    variants = [full] + [mask_context(lm, problem, units, [i], masking) for i in range(len(units))]
    logprobs = lm.score_variants(
        variants, problem.target_ids, batch_size, reference=full, progress=progress
    )
    drop = logprobs[:1] - logprobs[1:]  # [n_units, n_target]
    return MethodOutput(
        scores=drop.sum(1).tolist(),
        matrix=drop.T.tolist(),
        extra={
            "baseline_log_prob": float(logprobs[0].sum()),
            "variants_scored": len(variants),
        },
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
