"""attnlrp: attention-aware layer-wise relevance propagation (Achtibat et al., ICML 2024).

Relevance of every prompt token for the target's logits, by one forward and one backward
a row block, like grad_x_input: input embedding ⊙ gradient, but the gradient is that of
a backward pass changed by AttnLRP's rules (`lrp_rules`), which makes the relevances of
all positions add up to the explained logit, less the bias terms the rules leave.

What is explained is each target token's logit before the softmax (relevance is
conservative for a logit, not for a log-probability): the whole target is the sum of its
tokens' logits, a contrast is A's minus B's, a heatmap row is one token's logit.
"""

from __future__ import annotations

from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem
from .base import Aggregation, Cost, Family, MethodOutput, ProgressFn, predicts, register
from .gradient import GradientParams, _simple_gradient, simple_gradient_cost
from .lrp_rules import attnlrp_rules, check_supported


class AttnLRPParams(GradientParams):
    """Only the batching of grad_x_input: the rules themselves have no settings."""


@register(
    "attnlrp",
    Family.GRADIENT,
    params=AttnLRPParams,
    aggregation=Aggregation.SUM,
    signed=True,
    description=(
        "AttnLRP relevance for the target's logits: gradient times input through LRP rules "
        "for attention, norms and gated MLPs (signed; groups sum; llama, qwen2, gemma3)."
    ),
)
def attnlrp(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: AttnLRPParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    with lm.lock, attnlrp_rules(lm.model):
        return _simple_gradient(
            "dot", lm, problem, units, matrix, params.batch_size, progress, logits=True
        )


@predicts("attnlrp")
def attnlrp_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: AttnLRPParams, matrix: bool
) -> Cost:
    """grad_x_input's passes: one forward and backward a row block. Refuses an
    unsupported model here already, so an estimate says so before anything runs."""
    check_supported(lm.model)
    return simple_gradient_cost(lm, problem, units, params, matrix)
