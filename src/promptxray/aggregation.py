"""How a method's token scores combine into coarser units: the rule every result carries.

The rule is declared by each method (`methods.base.MethodSpec.aggregation`) but applied by
the result (`Attribution`) when it regroups, so it lives below both: the result never needs
the method registry to know how to add up its own scores.
"""

from __future__ import annotations

import math
from enum import StrEnum

from .errors import InvalidParameterError


class Aggregation(StrEnum):
    """How a method's token scores combine into a coarser unit."""

    SUM = "sum"  # additive attributions (completeness): a group scores the sum of its tokens
    NORM = "norm"  # gradient norms: a group scores sqrt(sum of squared token norms)
    FIXED = "fixed"  # computed by masking whole units: defined only on those, never regrouped


def combine(rule: Aggregation | str, values: list[float]) -> float:
    """One group's score from its parts under `rule` (FIXED groups have exactly one part)."""
    if rule == Aggregation.NORM:
        return math.sqrt(sum(v * v for v in values))
    if rule == Aggregation.FIXED and len(values) != 1:
        raise InvalidParameterError("A fixed-granularity result cannot be regrouped.")
    return float(sum(values))


# Results saved in format 1 did not record their rule; these were the methods then.
FORMAT_1_RULES: dict[str, tuple[Aggregation, bool]] = {
    "grad_norm": (Aggregation.NORM, False),
    "grad_x_input": (Aggregation.SUM, True),
    "integrated_gradients": (Aggregation.SUM, True),
    "leave_one_out": (Aggregation.FIXED, True),
    "random": (Aggregation.FIXED, False),
    "xprompt": (Aggregation.FIXED, True),
    "xprompt_paper": (Aggregation.FIXED, False),
}
