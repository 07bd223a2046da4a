"""`xprompt_paper`: Algorithm 1 of Chang et al. (2024) as written, as the reference.

The k largest |g| as the start, then N iterations, each proposing one swap (the
unit to add drawn from softmax(g) over the unmasked units, the unit to drop from
softmax(g) over the masked ones, g = |dL/dm|), kept if it lowers p(y); masking by
zeroing the embeddings (m ⊙ x). We draw each side from the softmax restricted to
that side, which is what the paper's text describes (its formula, read literally,
would also put weight on the other side's entries). Kept apart from xprompt's own
search (`joint_search`) so the published algorithm stays a fixed point to compare
against.
"""

from __future__ import annotations

import math
import random

from pydantic import Field

from ..masking import Operator
from ..model import LanguageModel
from ..record import Search
from ..segments import Unit
from ..targets import Problem
from . import quantity
from .base import Aggregation, Cost, Family, MethodOutput, ProgressFn, predicts, register
from .joint_objective import JointParams, Objective, Units, gradient_cost, unit_gradient


class XPromptPaperParams(JointParams):
    iterations: int = Field(200, ge=0, le=100_000, description="Swap iterations N.")
    masking: Operator = Field("zero", description="How a unit is removed (paper: zero).")


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
    scores_unmasked=True,
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
        search=Search(
            objective=value,
            baseline_objective=baseline,
            log_prob_drop=baseline - value,
            spent=objective.spent,
            accepted_swaps=accepted,
            trajectory=objective.finite_trajectory(),
            gradient=gradient,
        ),
    )


@predicts("xprompt_paper")
def xprompt_paper_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: XPromptPaperParams, matrix: bool
) -> Cost:
    """Exact: the gradient, the baseline, the start set, then one prompt per iteration
    (none when every unit is in the set), each scored alone."""
    prompts = 2 + (params.iterations if len(units) > params.k else 0)
    cost = gradient_cost(problem)
    for part, _ in quantity.parts(problem):
        cost = cost + Cost(prompts, prompts, 0, prompts * len(part.ids))
    return cost
