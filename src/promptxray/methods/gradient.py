"""Gradient salience: grad_norm, grad_x_input, integrated_gradients.

All three differentiate log p(target) w.r.t. the input embeddings. Every source
token is scored by the same backward pass. The target-token x source matrix (the
heatmap) needs one backward per target token; `gradient_rows` runs them, sharing
forwards (see there). grad_x_input's heatmap at units much coarser than tokens
comes instead from forward-mode derivatives, one tangent a unit (`unit_heatmap`).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from ..model import LanguageModel
from ..record import Completeness
from ..segments import Unit
from ..targets import Problem
from . import quantity
from .base import (
    KEYED_WHEN_SET,
    UNIT_MATRICES,
    Aggregation,
    Cost,
    Family,
    MethodOutput,
    MethodParams,
    ProgressFn,
    group_scores,
    predicts,
    register,
)
from .gradient_rows import Row, gradient_rows, rows_cost, token_rows_cost
from .unit_heatmap import UNIT_HEATMAP

# Smallest |log p(input) - log p(baseline)| (nats) a relative completeness gap divides by.
RELATIVE_FLOOR = 0.01


class GradientParams(MethodParams):
    batch_size: int = Field(
        16,
        ge=1,
        le=4096,
        description=(
            "Gradient rows per batched forward/backward; for the heatmap, target tokens "
            "per shared forward (time and memory only, never the scores)."
        ),
    )


class GradXInputParams(GradientParams):
    unit_heatmap: bool = Field(
        True,
        description=(
            "Heatmap at the requested units (not tokens) by forward-mode derivatives, "
            "one per unit, where that is cheaper: units at most a third of the target "
            "tokens. Same numbers; the heatmap then exists only at those units."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )


class IntegratedGradientsParams(GradientParams):
    steps: int = Field(
        20, ge=1, le=1024, description="Interpolation steps of the path integral (midpoint rule)."
    )
    tolerance: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description=(
            "0: exactly `steps` steps. Above 0 (e.g. 0.05): double the steps until the "
            "completeness gap is under this fraction of log p(input) - log p(baseline), "
            "or max_steps is reached."
        ),
        json_schema_extra={KEYED_WHEN_SET: True},
    )
    max_steps: int = Field(
        256,
        ge=1,
        le=1024,
        description="Most steps `tolerance` may double up to.",
        json_schema_extra={KEYED_WHEN_SET: True},
    )

    def step_schedule(self) -> list[int]:
        """The step counts tried in turn: `steps`, then (with a tolerance) doubled up to
        `max_steps`, whose last entry is the cap itself."""
        schedule = [self.steps]
        while self.tolerance > 0 and schedule[-1] < self.max_steps:
            schedule.append(min(2 * schedule[-1], self.max_steps))
        return schedule


def _reduce(kind: str, grads: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Per-position score from gradient and input: [B, T, H] -> [B, T]."""
    if kind == "norm":
        return grads.norm(dim=-1)
    return (grads * inputs).sum(-1)


def _simple_gradient(
    kind: str,
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    matrix: bool,
    batch_size: int,
    progress: ProgressFn | None,
    logits: bool = False,
) -> MethodOutput:
    """Gradients of the quantity (log p(target), or minus log p(contrast) too; with `logits`
    the target tokens' logits instead): each part's rows run on its own sequence; only the
    shared context's positions are kept, signed."""
    context = problem.target_start
    split = quantity.split_progress(progress, len(quantity.parts(problem)))
    blocks: list[torch.Tensor] = []
    total_grad, inputs0 = None, None
    for k, (part, sign) in enumerate(quantity.parts(problem)):
        n_target = len(part.target_ids)
        rows: list[Row] = [(1.0, j) for j in range(n_target)] if matrix else [(1.0, None)]
        per_row = torch.zeros(len(rows), context)
        found = gradient_rows(lm, part, rows, batch_size, split(k), logits=logits)
        for indices, grads, inputs in found:
            signed, kept = sign * grads[:, :context], inputs[:, :context]
            per_row[indices] = _reduce(kind, signed, kept).cpu()
            g = signed.sum(0, keepdim=True)
            total_grad = g if total_grad is None else total_grad + g
            inputs0 = kept[:1]
        blocks.append(per_row)
    # The quantity's gradient is the sum of its rows' gradients.
    total = _reduce(kind, total_grad, inputs0)[0].cpu()
    rule = Aggregation.NORM if kind == "norm" else Aggregation.SUM
    return _package(rule, problem, units, total, torch.cat(blocks) if matrix else None)


def _package(
    rule: Aggregation,
    problem: Problem,
    units: list[Unit],
    per_position: torch.Tensor,
    per_row: torch.Tensor | None,
) -> MethodOutput:
    sources = problem.source_positions
    token_scores = per_position[sources].tolist()
    matrix = None
    if per_row is not None:
        matrix = [group_scores(rule, row[sources].tolist(), units) for row in per_row]
    return MethodOutput(
        scores=group_scores(rule, token_scores, units),
        matrix=matrix,
        template_scores=per_position[problem.template_positions].tolist(),
    )


@register(
    "grad_norm",
    Family.GRADIENT,
    params=GradientParams,
    aggregation=Aggregation.NORM,
    signed=False,
    description=(
        "L2 norm of d log p(target) / d input embedding (unsigned); a group of tokens "
        "scores the norm of its whole gradient, sqrt(sum of squared token norms)."
    ),
)
def grad_norm(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: GradientParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    return _simple_gradient("norm", lm, problem, units, matrix, params.batch_size, progress)


@register(
    "grad_x_input",
    Family.GRADIENT,
    params=GradXInputParams,
    aggregation=Aggregation.SUM,
    signed=True,
    description="Gradient times input embedding, summed over dimensions (signed; groups sum).",
)
def grad_x_input(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: GradXInputParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    return _simple_gradient("dot", lm, problem, units, matrix, params.batch_size, progress)


UNIT_MATRICES["grad_x_input"] = UNIT_HEATMAP


@register(
    "integrated_gradients",
    Family.GRADIENT,
    params=IntegratedGradientsParams,
    aggregation=Aggregation.SUM,
    signed=True,
    description="Integrated gradients from a zero-embedding baseline (signed; groups sum).",
)
def integrated_gradients(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: IntegratedGradientsParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    """Midpoint Riemann sum of the path integral; all steps (and target rows) batched.

    The path scales the source embeddings from 0 (the baseline) to 1; template and
    target tokens stay as they are. Completeness says the source scores sum to
    log p(target | input) - log p(target | baseline); the Riemann sum misses that by
    a gap that shrinks with the steps, so the result reports it (`completeness`)
    and, given a `tolerance`, doubles the steps until two readings in a row are
    under it (or `max_steps`).
    """
    n_rows = quantity.n_rows(problem) if matrix else len(quantity.parts(problem))
    ends = endpoint_logprobs(lm, problem)
    schedule = params.step_schedule()
    tried: list[list[float]] = []
    done_before, total = 0, n_rows * sum(schedule)
    for n_steps in schedule:
        report = _offset_progress(progress, done_before, total)
        per_row = _integrate(lm, problem, matrix, n_steps, params.batch_size, report)
        done_before += n_rows * n_steps
        gap = _completeness(problem, per_row.sum(0), ends, n_steps, params.tolerance)
        tried.append([n_steps, gap["relative_gap"]])
        # One reading under the tolerance can be luck (on the default model one prompt
        # read 0.8% at 8 steps, 7-30% at 10 to 80): stop on two in a row, or the cap.
        met = [relative <= params.tolerance for _, relative in tried[-2:]]
        if params.tolerance == 0 or (len(met) == 2 and all(met)):
            break
    if progress and done_before < total:
        progress(total, total)  # converged before the cap: the remaining rounds are skipped
    out = _package(Aggregation.SUM, problem, units, per_row.sum(0), per_row if matrix else None)
    out.completeness = Completeness(**gap, steps_tried=tried)
    return out


def _integrate(
    lm: LanguageModel,
    problem: Problem,
    matrix: bool,
    n_steps: int,
    batch_size: int,
    progress: ProgressFn | None,
) -> torch.Tensor:
    """Per row (each target token of each part, or each part's sum), every context
    position's path integral with `n_steps` midpoints, signed: [rows, context]."""
    alphas = [(i + 0.5) / n_steps for i in range(n_steps)]
    context = problem.target_start
    blocks, done = [], 0
    for part, sign in quantity.parts(problem):
        targets: list[int | None] = list(range(len(part.target_ids))) if matrix else [None]
        rows: list[Row] = [(a, j) for j in targets for a in alphas]
        ids = torch.tensor([part.ids], device=lm.device)
        with torch.no_grad():
            full_inputs = lm.embed(ids)[0, :context].float()
        # Each step's gradient is reduced at once (g . x is linear in g), so nothing of
        # size steps x tokens x hidden is ever kept.
        per_row = torch.zeros(len(targets), context)
        report = _offset_progress(progress, done, None)
        for indices, grads, _ in gradient_rows(lm, part, rows, batch_size, report):
            for i, g in zip(indices, grads, strict=True):
                per_row[i // n_steps] += (
                    sign * (g[:context] * full_inputs).sum(-1) / n_steps
                ).cpu()
        blocks.append(per_row)
        done += len(rows)
    return torch.cat(blocks)


def endpoint_logprobs(lm: LanguageModel, problem: Problem) -> tuple[float, float]:
    """The quantity at the path's two ends, (input, baseline): log p(target), minus
    log p(contrast) if any, summed over target tokens; one forward of two rows a part.
    The baseline zeroes the source embeddings exactly as the path's alpha = 0 would."""
    full, baseline = 0.0, 0.0
    for part, sign in quantity.parts(problem):
        ids = torch.tensor([part.ids], device=lm.device)
        keep = torch.ones(ids.shape[1], 1, device=lm.device)
        keep[part.source_positions] = 0.0
        with lm.lock, torch.no_grad():
            base = lm.embed(ids).float()
            inputs = torch.cat([base, base * keep]).to(lm.dtype)
            logprobs = lm.target_logprobs(
                ids.expand(2, -1), part.target_start, inputs_embeds=inputs
            )
        ends = logprobs.sum(-1).tolist()
        full, baseline = full + sign * ends[0], baseline + sign * ends[1]
    return full, baseline


def _completeness(
    problem: Problem,
    per_position: torch.Tensor,
    ends: tuple[float, float],
    n_steps: int,
    tolerance: float,
) -> dict[str, Any]:
    """How far the source scores' sum is from log p(input) - log p(baseline).

    Only source positions are on the path, so only their scores are summed. The
    relative gap divides by |difference| floored at `RELATIVE_FLOOR` nats, so a
    prompt whose baseline barely changes the target is not held to 5% of nothing.
    """
    total = float(per_position[problem.source_positions].sum())
    difference = ends[0] - ends[1]
    gap = total - difference
    relative = abs(gap) / max(abs(difference), RELATIVE_FLOOR)
    return {
        "attribution_sum": total,
        "log_prob_input": ends[0],
        "log_prob_baseline": ends[1],
        "difference": difference,
        "gap": gap,
        "relative_gap": relative,
        "summed_over": "source positions (user, system, earlier output)",
        "steps": n_steps,
        "tolerance": tolerance,
        "converged": relative <= tolerance if tolerance > 0 else None,
    }


def _offset_progress(
    progress: ProgressFn | None, before: int, total: int | None
) -> ProgressFn | None:
    """Progress of one round (or part) as part of the whole, `before` rows done already
    (`total` None: the whole's total is the one reported to this progress)."""
    if progress is None:
        return None
    return lambda done, of: progress(before + done, of if total is None else total)


@predicts("grad_norm")
@predicts("grad_x_input")
def simple_gradient_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: GradientParams, matrix: bool
) -> Cost:
    """One row for the whole target, or one per target token for the matrix; per part."""
    cost = Cost(0, 0, 0, 0)
    for part, _ in quantity.parts(problem):
        if matrix:
            cost = cost + token_rows_cost(lm, part, params.batch_size)
        else:
            cost = cost + rows_cost(lm, part, 1, params.batch_size)
    return cost


@predicts("integrated_gradients")
def integrated_gradients_cost(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: IntegratedGradientsParams,
    matrix: bool,
) -> Cost:
    """Steps x target rows, plus one forward of the path's two ends. With a tolerance,
    every round up to `max_steps`: a bound, as the gap may be met earlier."""
    cost = Cost(0, 0, 0, 0)
    schedule = params.step_schedule()
    for part, _ in quantity.parts(problem):
        cost = cost + Cost(2, 1, 0, 2 * len(part.ids))
        for n_steps in schedule:
            if matrix:
                for _ in range(n_steps):
                    cost = cost + token_rows_cost(lm, part, params.batch_size)
            else:
                cost = cost + rows_cost(lm, part, n_steps, params.batch_size)
    return cost.bound() if len(schedule) > 1 else cost
