"""What a method will cost, predicted before it runs.

A long prompt can make leave-one-out run hundreds of forward passes; the user
should hear that before waiting for it. Every method registers a predictor next
to its algorithm (`base.predicts`); the predictors of the masking methods follow
the very plan the batched scorer executes (`VariantScorer.plan`), so a predicted
pass is a counted one. Where a method's work depends on what it finds (xprompt's
search, a tolerance that doubles steps), the prediction is its bound and says so.

Seconds come from one measured forward of the problem: time per token position,
times the token positions the passes compute (a backward counted as two forwards).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from ..masking import mask_context
from ..model import LanguageModel, MaskedContext
from ..segments import Unit, group_units
from ..targets import Problem
from .base import Cost, MethodParams, predicts

# A backward pass costs about two forwards of the same rows.
BACKWARD_WEIGHT = 2.0


def variant_cost(
    lm: LanguageModel,
    variants: list[MaskedContext],
    target_ids: list[int],
    batch_size: int,
    reference: MaskedContext | None = None,
) -> Cost:
    """The passes one `score_variants` call will make (its own plan, not a model)."""
    plan = lm.scorer.plan(variants, target_ids, batch_size, reference=reference)
    return Cost(plan.forward_sequences, plan.forward_calls, 0, plan.token_rows)


@predicts("leave_one_out")
def leave_one_out_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: MethodParams, matrix: bool
) -> Cost:
    """Exact: the unmasked prompt and one variant per unit in one prefix-shared run.

    Hierarchical (`coarse`): the coarse run, then at most the units of the `refine`
    largest coarse units that hold more than one unit: an upper bound, since which
    coarse units are refined depends on their scores.
    """
    masking, batch_size = params.masking, params.batch_size  # type: ignore[attr-defined]
    full = mask_context(lm, problem, units, [], masking)
    coarse = getattr(params, "coarse", "none")
    if coarse == "none":
        singles = [mask_context(lm, problem, units, [i], masking) for i in range(len(units))]
        return variant_cost(lm, [full, *singles], problem.target_ids, batch_size, full)
    _, owner = group_units(units, problem.role_text, coarse)
    members: dict[int, list[int]] = {}
    for i, c in enumerate(owner):
        members.setdefault(c, []).append(i)
    groups = list(members.values())
    coarse_variants = [mask_context(lm, problem, units, g, masking) for g in groups]
    first = variant_cost(lm, [full, *coarse_variants], problem.target_ids, batch_size, full)
    biggest = sorted((g for g in groups if len(g) > 1), key=len, reverse=True)
    fine = [i for g in biggest[: params.refine] for i in g]  # type: ignore[attr-defined]
    singles = [mask_context(lm, problem, units, [i], masking) for i in fine]
    second = variant_cost(lm, singles, problem.target_ids, batch_size, full)
    return (first + second).bound()


@predicts("random")
def random_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: MethodParams, matrix: bool
) -> Cost:
    """Random scores touch no model."""
    return Cost(0, 0, 0, 0)


def seconds_per_token(lm: LanguageModel, problem: Problem) -> float:
    """Seconds per token position, from one teacher-forced forward of the whole sequence.

    The forward is the tool's, not a method's, so it is not counted.
    """
    saved = lm.cost.snapshot()
    try:
        lm.score(problem.ids, problem.target_start)  # warm: first calls pay one-time setup
        started = time.perf_counter()
        lm.score(problem.ids, problem.target_start)
        elapsed = time.perf_counter() - started
    finally:
        lm.cost.restore(saved)
    return elapsed / max(1, len(problem.ids))


@dataclass(frozen=True)
class Estimate:
    """A method's predicted passes and seconds on one problem."""

    method: str
    cost: Cost
    seconds: float
    seconds_per_token: float

    def line(self) -> str:
        """One line for the user: "leave_one_out: about 327 forward passes, ~40 s"."""
        c = self.cost
        amount = "at most" if c.upper_bound else "about"
        passes = f"{amount} {c.forward_sequences} forward passes"
        if c.backward_calls:
            passes += f" and {c.backward_calls} backward"
        return f"{self.method}: {passes}, ~{_seconds(self.seconds)}"

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            **asdict(self.cost),
            "seconds": self.seconds,
            "seconds_per_token": self.seconds_per_token,
            "line": self.line(),
        }


def seconds_for(cost: Cost, per_token: float) -> float:
    return per_token * (cost.token_rows + BACKWARD_WEIGHT * cost.backward_token_rows)


def _seconds(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
