"""Perturbation methods: leave_one_out (mask each unit, watch the target) and random (the control).

Both work on whole units at the chosen granularity (token, word, sentence, ...)
and record the masking operator, so the evaluation masks the same way.
"""

from __future__ import annotations

import operator
import random as _random
from typing import Any

from ..errors import InvalidParameterError
from ..masking import DEFAULT_OPERATOR, check_operator, mask_context
from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem
from .base import MethodOutput, ProgressFn, register


def as_int(name: str, value: Any, minimum: int | None = None) -> int:
    """`value` as an int (ints and numpy ints pass, bools and floats do not), or a clear error."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise InvalidParameterError(f"{name} must be an integer; got {value!r}.") from None
    if minimum is not None and number < minimum:
        raise InvalidParameterError(f"{name} must be at least {minimum}; got {number}.")
    return number


@register(
    "leave_one_out",
    "perturbation",
    token_level=False,
    description=(
        "log p(target) minus log p(target) with the unit masked (positive = the unit "
        "supports the target); params masking, batch_size."
    ),
)
def leave_one_out(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    masking: str = DEFAULT_OPERATOR,
    batch_size: int = 16,
    progress: ProgressFn | None = None,
    **_: Any,
) -> MethodOutput:
    """Score each unit by how much the target's log-probability drops without it.

    One scoring run gives per-target-token log-probs for every variant, so the
    target-token x unit matrix costs nothing extra and is always returned:
    matrix[j][i] = log p(y_j | x, y_<j) - log p(y_j | x without unit i, y_<j), and
    a unit's score is its column sum.
    """
    check_operator(masking)
    batch_size = as_int("batch_size", batch_size, 1)
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
            "masking": masking,
            "baseline_log_prob": float(logprobs[0].sum()),
            "variants_scored": len(variants),
        },
    )


@register(
    "random",
    "perturbation",
    token_level=False,
    description="Seeded uniform random scores in [0, 1): the control to beat (seed).",
)
def random_scores(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    seed: int = 0,
    masking: str = DEFAULT_OPERATOR,
    **_: Any,
) -> MethodOutput:
    """Random scores; the same seed gives the same scores for the same units.

    The masking operator does nothing here but is recorded, because the
    evaluation of this control must mask the way the methods it is compared with do.
    """
    check_operator(masking)
    seed = as_int("seed", seed)
    rng = _random.Random(seed)
    return MethodOutput(
        scores=[rng.random() for _ in units], extra={"masking": masking, "seed": seed}
    )
