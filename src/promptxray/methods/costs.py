"""What a method will cost, predicted before it runs.

A long prompt can make leave-one-out run hundreds of forward passes; the user
should hear that before waiting for it. Every method registers a predictor next
to its algorithm (`base.predicts`); this module holds what they share. The
predictors of the masking methods follow
the very plan the batched scorer executes (`VariantScorer.plan`), so a predicted
pass is a counted one. Where a method's work depends on what it finds (xprompt's
search, a tolerance that doubles steps), the prediction is its bound and says so.

Seconds come from one measured forward of the problem: time per token position,
times the token positions the passes compute (a backward counted as two forwards).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from ..model import LanguageModel, MaskedContext
from ..targets import Problem
from .base import Cost

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

    def line(self, method_forward: int | None = None) -> str:
        """One line for the user: "leave_one_out: about 327 forward passes, ~40 s". With
        `method_forward` (the method's own share, when the estimate includes a check), the
        passes are told apart as the result tells them: "(30 to explain, 21 to check)"."""
        c = self.cost
        amount = "at most" if c.upper_bound else "about"
        passes = f"{amount} {c.forward_sequences} forward passes"
        if method_forward is not None and c.forward_sequences != method_forward:
            checking = c.forward_sequences - method_forward
            passes += f" ({method_forward} to explain, {checking} to check)"
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
