"""What the page says about a method, from its MethodSpec: one wording source.

The page's method help, its list header and its mask preview describe what the server
does with a result (how units regroup, in which order the list and "mask top-k" take
them). Those follow from the spec's aggregation rule, sign and family, so they are
written here, next to the rules, and served with /api/info; the page holds no text of
its own about any method, and a newly registered method gets its wording with it.
"""

from __future__ import annotations

from typing import Any

from ..aggregation import Aggregation
from ..methods.base import Family, MethodSpec

# One pass, as every count the page shows (estimate, result, search) counts it.
PASS_NOTE = (
    "One forward pass = one prompt run through the model (a masked prompt scored, "
    "the unmasked prompt, a shared prefix, or a gradient's forward)."
)

_REGROUPING = {
    Aggregation.SUM: "Scores are computed per token; a coarser unit scores the sum of its "
    "tokens, so any granularity is shown without the model.",
    Aggregation.NORM: "Scores are computed per token; a coarser unit scores the norm of its "
    "tokens' gradients, sqrt(sum of squares), so any granularity is shown without the model.",
    Aggregation.FIXED: "Scores are computed by masking whole units: another granularity "
    "needs a new computation (Explain again), never a regrouping.",
}


def ranking_words(spec: MethodSpec) -> str:
    """The order of the ranked list (`Attribution.ranking(by="magnitude")`), in words."""
    strength = "largest |score| first, sign shown" if spec.signed else "largest score first"
    if spec.family == Family.JOINT:
        return (
            "the set chosen together first, by each unit's marginal contribution; "
            f"then the rest by leave-one-out, {strength}"
        )
    return strength


def removal_words(spec: MethodSpec) -> str:
    """What "mask top-k" removes (`Attribution.ranking(by="support")`), in words."""
    if spec.family == Family.JOINT:
        return "the set chosen together first, then the units that raise p(target) most"
    if spec.signed:
        return "the units that raise p(target) most"
    return "the strongest units"


def method_words(spec: MethodSpec) -> dict[str, Any]:
    """The wording fields /api/info serves for one method."""
    return {
        "summary": spec.description.split("; ")[0].split(". ")[0].rstrip("."),
        "regrouping": _REGROUPING.get(Aggregation(spec.aggregation), ""),
        "ranking": ranking_words(spec),
        "removal": removal_words(spec),
    }
