"""Gradient salience: grad_norm, grad_x_input, integrated_gradients.

All three differentiate log p(target) w.r.t. the input embeddings. Every source
token is scored by the same backward pass; the target-token x source matrix (the
heatmap) batches one copy of the sequence per target token, so it costs one
backward per batch rather than one per target token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from pydantic import Field

from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem
from .base import (
    KEYED_WHEN_SET,
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

# A gradient row: (interpolation factor alpha for the source embeddings, target token
# whose log-prob is differentiated, or None for the sum over all target tokens).
Row = tuple[float, int | None]

# Smallest |log p(input) - log p(baseline)| (nats) a relative completeness gap divides by.
RELATIVE_FLOOR = 0.01


class GradientParams(MethodParams):
    batch_size: int = Field(
        16, ge=1, le=4096, description="Gradient rows per batched forward/backward (memory only)."
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


def _gradient_rows(
    lm: LanguageModel,
    problem: Problem,
    rows: list[Row],
    batch_size: int,
    progress: ProgressFn | None,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield (row indices, grads [B, T, H], scaled inputs [B, T, H]) batch by batch.

    The model reads its inputs in its own dtype; what is yielded is float32, so sums
    over steps, rows and dimensions never accumulate in 16 bits. A batch holds at
    most `batch_size` rows and no more than the model's memory budget allows (see
    `model.memory`), so memory depends on the prompt's length, not on the number of
    steps or target tokens.
    """
    ids = torch.tensor([problem.ids], device=lm.device)
    source = torch.zeros(ids.shape[1], 1, device=lm.device)
    source[problem.source_positions] = 1.0
    start = problem.target_start
    step, recompute = lm.plan_backward(ids.shape[1], batch_size)
    with lm.lock:
        base = lm.embed(ids).detach().float()
        for first in range(0, len(rows), step):
            chunk = rows[first : first + step]
            alphas = torch.tensor([a for a, _ in chunk], device=lm.device).view(-1, 1, 1)
            scale = 1.0 + (alphas - 1.0) * source  # alpha on sources, 1 elsewhere
            inputs = (base * scale).to(lm.dtype).requires_grad_(True)
            batch_ids = ids.expand(len(chunk), -1)
            with lm.recomputing_layers(recompute):
                logprobs = lm.target_logprobs(batch_ids, start, inputs_embeds=inputs)
                picks = []
                for b, (_, token) in enumerate(chunk):
                    picks.append(logprobs[b].sum() if token is None else logprobs[b, token])
                (grads,) = torch.autograd.grad(torch.stack(picks).sum(), inputs)
            lm.count_backward()
            yield (
                list(range(first, first + len(chunk))),
                grads.detach().float(),
                inputs.detach().float(),
            )
            if progress:
                progress(min(first + step, len(rows)), len(rows))


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
) -> MethodOutput:
    n_target = len(problem.target_ids)
    rows: list[Row] = [(1.0, j) for j in range(n_target)] if matrix else [(1.0, None)]
    per_row = torch.zeros(len(rows), len(problem.ids))
    total_grad = None
    inputs0 = None
    for indices, grads, inputs in _gradient_rows(lm, problem, rows, batch_size, progress):
        per_row[indices] = _reduce(kind, grads, inputs).cpu()
        g = grads.sum(0, keepdim=True)
        total_grad = g if total_grad is None else total_grad + g
        inputs0 = inputs[:1]
    # The gradient of the summed log-prob is the sum of the per-token gradients.
    total = _reduce(kind, total_grad, inputs0)[0].cpu()
    rule = Aggregation.NORM if kind == "norm" else Aggregation.SUM
    return _package(rule, problem, units, total, per_row if matrix else None)


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
    params=GradientParams,
    aggregation=Aggregation.SUM,
    signed=True,
    description="Gradient times input embedding, summed over dimensions (signed; groups sum).",
)
def grad_x_input(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: GradientParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    return _simple_gradient("dot", lm, problem, units, matrix, params.batch_size, progress)


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
    targets: list[int | None] = list(range(len(problem.target_ids))) if matrix else [None]
    ends = endpoint_logprobs(lm, problem)
    schedule = params.step_schedule()
    tried: list[list[float]] = []
    done_before, total = 0, len(targets) * sum(schedule)
    for n_steps in schedule:
        report = _offset_progress(progress, done_before, total)
        per_row = _integrate(lm, problem, targets, n_steps, params.batch_size, report)
        done_before += len(targets) * n_steps
        gap = _completeness(problem, per_row.sum(0), ends, n_steps, params.tolerance)
        tried.append([n_steps, gap["relative_gap"]])
        # One reading under the tolerance can be luck (on the default model one prompt
        # read 0.8% at 8 steps, 7-30% at 10 to 80): stop on two in a row, or the cap.
        met = [relative <= params.tolerance for _, relative in tried[-2:]]
        if params.tolerance == 0 or (len(met) == 2 and all(met)):
            break
    if progress and done_before < total:
        progress(total, total)  # converged before the cap: the remaining rounds are skipped
    gap["steps_tried"] = tried
    out = _package(Aggregation.SUM, problem, units, per_row.sum(0), per_row if matrix else None)
    out.extra["completeness"] = gap
    return out


def _integrate(
    lm: LanguageModel,
    problem: Problem,
    targets: list[int | None],
    n_steps: int,
    batch_size: int,
    progress: ProgressFn | None,
) -> torch.Tensor:
    """Per target row, each position's path integral with `n_steps` midpoints: [rows, T]."""
    alphas = [(i + 0.5) / n_steps for i in range(n_steps)]
    rows: list[Row] = [(a, j) for j in targets for a in alphas]
    ids = torch.tensor([problem.ids], device=lm.device)
    with torch.no_grad():
        full_inputs = lm.embed(ids)[0].float()
    # Each step's gradient is reduced at once (g . x is linear in g), so nothing of
    # size steps x tokens x hidden is ever kept.
    per_row = torch.zeros(len(targets), len(problem.ids))
    for indices, grads, _ in _gradient_rows(lm, problem, rows, batch_size, progress):
        for i, g in zip(indices, grads, strict=True):
            per_row[i // n_steps] += ((g * full_inputs).sum(-1) / n_steps).cpu()
    return per_row


def endpoint_logprobs(lm: LanguageModel, problem: Problem) -> tuple[float, float]:
    """(log p(target | input), log p(target | baseline)): the path's two ends, summed over
    target tokens, from one forward of two rows; the baseline zeroes the source
    embeddings exactly as the path's alpha = 0 would."""
    ids = torch.tensor([problem.ids], device=lm.device)
    keep = torch.ones(ids.shape[1], 1, device=lm.device)
    keep[problem.source_positions] = 0.0
    with lm.lock, torch.no_grad():
        base = lm.embed(ids).float()
        inputs = torch.cat([base, base * keep]).to(lm.dtype)
        logprobs = lm.target_logprobs(ids.expand(2, -1), problem.target_start, inputs_embeds=inputs)
    full, baseline = logprobs.sum(-1).tolist()
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


def _offset_progress(progress: ProgressFn | None, before: int, total: int) -> ProgressFn | None:
    """Progress of one doubling round as part of the whole schedule."""
    if progress is None:
        return None
    return lambda done, _: progress(before + done, total)


def completeness_note(metadata: dict[str, Any] | None) -> str | None:
    """One line for the views: "completeness gap 3.1% (20 steps)", or None without one."""
    gap = (metadata or {}).get("completeness")
    if not gap:
        return None
    note = f"completeness gap {100 * gap['relative_gap']:.1f}% ({gap['steps']} steps)"
    if gap.get("converged") is False:
        note += f", above the {100 * gap['tolerance']:g}% tolerance at the step cap"
    return note


# ----- cost predictions (see `costs`): what `_gradient_rows` will run ------------------------
def _rows_cost(lm: LanguageModel, problem: Problem, n_rows: int, batch_size: int) -> Cost:
    """Passes of `_gradient_rows` over `n_rows` rows: one forward and backward a batch."""
    length = len(problem.ids)
    step, recompute = lm.plan_backward(length, batch_size)
    calls = -(-n_rows // step)
    forward_rows = n_rows * length * (2 if recompute else 1)  # recompute: the forward again
    return Cost(n_rows, calls, calls, forward_rows, n_rows * length)


@predicts("grad_norm")
@predicts("grad_x_input")
def simple_gradient_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: GradientParams, matrix: bool
) -> Cost:
    """One row for the whole target, or one per target token for the matrix."""
    rows = len(problem.target_ids) if matrix else 1
    return _rows_cost(lm, problem, rows, params.batch_size)


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
    targets = len(problem.target_ids) if matrix else 1
    cost = Cost(2, 1, 0, 2 * len(problem.ids))
    schedule = params.step_schedule()
    for n_steps in schedule:
        cost = cost + _rows_cost(lm, problem, targets * n_steps, params.batch_size)
    return cost.bound() if len(schedule) > 1 else cost
