"""Gradient salience: grad_norm, grad_x_input, integrated_gradients.

All three differentiate log p(target) w.r.t. the input embeddings. Every source
token is scored by the same backward pass. The target-token x source matrix (the
heatmap) needs one backward per target token; those rows share their forward (the
activations are the same for every row) and each block of rows runs only on the
prefix its last token depends on (`plan_token_blocks`). grad_x_input's heatmap at
units much coarser than tokens comes instead from forward-mode derivatives, one
per unit (`unit_matrix`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field

from ..model import LanguageModel
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
    UnitMatrix,
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


def _gradient_rows(
    lm: LanguageModel,
    problem: Problem,
    rows: list[Row],
    batch_size: int,
    progress: ProgressFn | None,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield (row indices, grads [B, T, H], scaled inputs [B, T, H]) batch by batch.

    Rows for the whole target (token None) each need their own forward; rows for
    one target token (the heatmap) share forwards, see `_token_rows`. The model
    reads its inputs in its own dtype; what is yielded is float32, so sums over
    steps, rows and dimensions never accumulate in 16 bits. Memory depends on the
    prompt's length, not on the number of steps or target tokens (`model.memory`).
    """
    summed = [i for i, (_, token) in enumerate(rows) if token is None]
    per_token = [i for i, (_, token) in enumerate(rows) if token is not None]
    counter = _Progress(progress, len(rows))
    ids = torch.tensor([problem.ids], device=lm.device)
    with lm.lock:
        base = lm.embed(ids).detach().float()
        yield from _summed_rows(
            lm, problem, ids, base, [(i, rows[i][0]) for i in summed], batch_size, counter
        )
        tokens = [(i, rows[i][0], rows[i][1]) for i in per_token]
        yield from _token_rows(lm, problem, ids, base, tokens, batch_size, counter)


class _Progress:
    """Rows done out of all rows, reported after every backward."""

    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def add(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress(self.done, self.total)


def _scaled(base: torch.Tensor, problem: Problem, alphas: list[float]) -> torch.Tensor:
    """Copies of the embeddings with the source positions scaled by each alpha: [B, T, H]."""
    source = torch.zeros(base.shape[1], 1, device=base.device)
    source[problem.source_positions] = 1.0
    scale = 1.0 + (torch.tensor(alphas, device=base.device).view(-1, 1, 1) - 1.0) * source
    return base * scale


def _summed_rows(
    lm: LanguageModel,
    problem: Problem,
    ids: torch.Tensor,
    base: torch.Tensor,
    rows: list[tuple[int, float]],
    batch_size: int,
    counter: _Progress,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Rows differentiating the summed log p(target): one copy of the sequence each,
    batched as `plan_backward` allows."""
    step, recompute = lm.plan_backward(ids.shape[1], batch_size)
    for first in range(0, len(rows), step):
        chunk = rows[first : first + step]
        inputs = _scaled(base, problem, [a for _, a in chunk]).to(lm.dtype).requires_grad_(True)
        with lm.recomputing_layers(recompute):
            logprobs = lm.target_logprobs(
                ids.expand(len(chunk), -1), problem.target_start, inputs_embeds=inputs
            )
            (grads,) = torch.autograd.grad(logprobs.sum(), inputs)
        lm.count_backward()
        yield [i for i, _ in chunk], grads.detach().float(), inputs.detach().float()
        counter.add(len(chunk))


@dataclass(frozen=True)
class TokenBlock:
    """Heatmap rows that share one forward: target tokens `first`..`last` at one alpha,
    run on the prefix up to the last of them (`length` positions), `step` rows per
    backward."""

    first: int
    last: int
    length: int
    step: int
    recompute: bool

    @property
    def backward_calls(self) -> int:
        return -(-(self.last - self.first + 1) // self.step)


def plan_token_blocks(lm: LanguageModel, problem: Problem, batch_size: int) -> list[TokenBlock]:
    """How the rows of one alpha's heatmap are run: `batch_size` target tokens per forward.

    Row j (log p of target token j) depends only on the positions before it, so a
    block's forward stops at its last token: early rows never pay for the rest of
    the output. The activations are the same for every row of a block, so the block
    runs forward once and backward once per `step` rows (a batched vector-Jacobian
    product), `step` and recompute as `plan_backward` sizes them for that length.
    """
    blocks = []
    n_target = len(problem.target_ids)
    for first in range(0, n_target, batch_size):
        last = min(n_target, first + batch_size) - 1
        length = problem.target_start + last + 1
        step, recompute = lm.plan_backward(length, batch_size)
        blocks.append(TokenBlock(first, last, length, step, recompute))
    return blocks


def _token_rows(
    lm: LanguageModel,
    problem: Problem,
    ids: torch.Tensor,
    base: torch.Tensor,
    rows: list[tuple[int, float, int]],
    batch_size: int,
    counter: _Progress,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Rows differentiating one target token's log-prob each (the heatmap), by blocks.

    Gradients are zero beyond a row's prefix (a causal model), so each block's
    gradients are padded with zeros to the full length.
    """
    by_alpha: dict[float, dict[int, int]] = {}
    for index, alpha, token in rows:
        by_alpha.setdefault(alpha, {})[token] = index
    start, full = problem.target_start, ids.shape[1]
    for alpha, index_of in by_alpha.items():
        scaled = _scaled(base, problem, [alpha])
        for block in plan_token_blocks(lm, problem, batch_size):
            wanted = [t for t in range(block.first, block.last + 1) if t in index_of]
            if not wanted:
                continue
            inputs = scaled[:, : block.length].to(lm.dtype).requires_grad_(True)
            with lm.recomputing_layers(block.recompute):
                logprobs = lm.target_logprobs(ids[:, : block.length], start, inputs_embeds=inputs)[
                    0
                ]
                for k in range(0, len(wanted), block.step):
                    chunk = wanted[k : k + block.step]
                    last = k + block.step >= len(wanted)
                    grads = _row_gradients(lm, logprobs, inputs, chunk, retain=not last)
                    padded = torch.zeros(len(chunk), full, base.shape[2], device=base.device)
                    padded[:, : block.length] = grads.float()
                    yield (
                        [index_of[t] for t in chunk],
                        padded,
                        scaled.expand(len(chunk), -1, -1),
                    )
                    counter.add(len(chunk))


def _row_gradients(
    lm: LanguageModel, logprobs: torch.Tensor, inputs: torch.Tensor, picks: list[int], retain: bool
) -> torch.Tensor:
    """d logprobs[p] / d inputs for each p in `picks`, from one backward: [len(picks), L, H].

    Several rows go through one batched vector-Jacobian product (`is_grads_batched`);
    an architecture whose backward cannot be batched that way gets one backward per
    row instead (same numbers).
    """
    if len(picks) > 1:
        selectors = torch.zeros(len(picks), logprobs.shape[0], device=logprobs.device)
        selectors[torch.arange(len(picks)), picks] = 1.0
        try:
            (grads,) = torch.autograd.grad(
                logprobs,
                inputs,
                grad_outputs=selectors,
                is_grads_batched=True,
                retain_graph=retain,
            )
            lm.count_backward()
            return grads[:, 0].detach()
        except RuntimeError:
            pass
    rows = []
    for n, p in enumerate(picks):
        (grads,) = torch.autograd.grad(
            logprobs[p], inputs, retain_graph=retain or n < len(picks) - 1
        )
        lm.count_backward()
        rows.append(grads[0].detach())
    return torch.stack(rows)


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
    """Gradients of the quantity (log p(target), or minus log p(contrast) too): each part's
    rows run on its own sequence; only the shared context's positions are kept, signed."""
    context = problem.target_start
    split = quantity.split_progress(progress, len(quantity.parts(problem)))
    blocks: list[torch.Tensor] = []
    total_grad, inputs0 = None, None
    for k, (part, sign) in enumerate(quantity.parts(problem)):
        n_target = len(part.target_ids)
        rows: list[Row] = [(1.0, j) for j in range(n_target)] if matrix else [(1.0, None)]
        per_row = torch.zeros(len(rows), context)
        for indices, grads, inputs in _gradient_rows(lm, part, rows, batch_size, split(k)):
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


# A forward with tangents (forward-mode derivatives) costs about as much as three rows
# of the shared-forward token heatmap: measured on the default model at 141 tokens,
# 1.5 s a unit against 0.45 s a row, one thread.
FORWARD_MODE_ROW_COST = 3


def _unit_heatmap_applies(problem: Problem, units: list[Unit], params: GradXInputParams) -> bool:
    """Forward mode pays when there are at most a third as many units as target tokens."""
    n_units = len(units)
    return params.unit_heatmap and 0 < n_units * FORWARD_MODE_ROW_COST <= quantity.n_rows(problem)


# Token positions one forward-mode call may compute on a CPU: the primal once plus
# one tangent per unit, each about a forward's work (measured on the default model,
# 141 tokens: 1.1 s primal, 1.06 s a tangent), so at about 300 positions a second
# on one core a call stays near 2 s and a cancel, checked after each, lands in time.
CPU_FORWARD_MODE_TOKENS = 600


def _unit_rows_per_call(lm: LanguageModel, problem: Problem, batch_size: int) -> int:
    """Units (tangents) per forward-mode call: `batch_size`, and on a CPU as many as
    fit `CPU_FORWARD_MODE_TOKENS` with the primal."""
    if lm.device.type != "cpu":
        return batch_size
    return max(1, min(batch_size, CPU_FORWARD_MODE_TOKENS // len(problem.ids) - 1))


def unit_heatmap(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: GradXInputParams,
    progress: ProgressFn | None,
) -> list[list[float]] | None:
    """grad_x_input's [target token][unit] matrix by forward-mode derivatives.

    grad_x_input of a unit for target token j is sum over its tokens of
    d log p_j / d x_t . x_t, which is the derivative of every log p_j along the
    direction "the unit's own embeddings, zero elsewhere". One forward with that
    tangent gives the unit's whole column, so the matrix costs one such forward a
    unit instead of one backward a target token. Attention runs in the math kernel
    (fused kernels have no forward mode). None when the model has an operation
    without forward-mode derivatives; the caller then takes the token rows.
    """

    rows = []
    split = quantity.split_progress(progress, len(quantity.parts(problem)))
    for k, (part, sign) in enumerate(quantity.parts(problem)):
        columns = _unit_columns(lm, part, units, params.batch_size, split(k))
        if columns is None:
            return None
        rows.append(sign * columns.T)
    return torch.cat(rows).tolist()


def _unit_columns(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    batch_size: int,
    progress: ProgressFn | None,
) -> torch.Tensor | None:
    """d log p(target token j) along each unit's direction: [units, target tokens].

    `torch.func.jvp` under `vmap` over the tangents: the primal (the ordinary
    forward) runs once per call, only the tangents are batched, so a unit costs
    about one forward rather than two.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    ids = torch.tensor([problem.ids], device=lm.device)
    sources = problem.source_positions
    step = _unit_rows_per_call(lm, problem, batch_size)
    columns: list[torch.Tensor] = []

    def logprobs(inputs: torch.Tensor) -> torch.Tensor:
        return lm.target_logprobs(ids, problem.target_start, inputs_embeds=inputs)[0]

    with lm.lock, torch.no_grad():
        base = lm.embed(ids).detach().to(lm.dtype)
        for first in range(0, len(units), step):
            chunk = units[first : first + step]
            tangents = torch.zeros(len(chunk), *base.shape, device=lm.device, dtype=lm.dtype)
            for b, unit in enumerate(chunk):
                positions = [sources[t] for t in unit.tokens]
                tangents[b, 0, positions] = base[0, positions]
            try:
                with sdpa_kernel(SDPBackend.MATH):
                    directional = torch.func.vmap(
                        lambda t: torch.func.jvp(logprobs, (base,), (t,))[1]
                    )(tangents)
            except (NotImplementedError, RuntimeError):
                return None
            columns.append(directional.float().cpu())
            if progress:
                progress(min(first + step, len(units)), len(units))
    return torch.cat(columns)


def unit_heatmap_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: GradXInputParams
) -> Cost:
    """One call (the primal once, a tangent per unit, each about a forward) per chunk
    of units and part."""
    cost = Cost(0, 0, 0, 0)
    for part, _ in quantity.parts(problem):
        step = _unit_rows_per_call(lm, part, params.batch_size)
        calls = -(-len(units) // step)
        cost = cost + Cost(calls, calls, 0, (calls + len(units)) * len(part.ids))
    return cost


UNIT_MATRICES["grad_x_input"] = UnitMatrix(_unit_heatmap_applies, unit_heatmap, unit_heatmap_cost)


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
    gap["steps_tried"] = tried
    out = _package(Aggregation.SUM, problem, units, per_row.sum(0), per_row if matrix else None)
    out.extra["completeness"] = gap
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
        for indices, grads, _ in _gradient_rows(lm, part, rows, batch_size, report):
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
    """Passes of `_summed_rows` over `n_rows` rows: one forward and backward a batch."""
    length = len(problem.ids)
    step, recompute = lm.plan_backward(length, batch_size)
    calls = -(-n_rows // step)
    forward_rows = n_rows * length * (2 if recompute else 1)  # recompute: the forward again
    return Cost(n_rows, calls, calls, forward_rows, n_rows * length)


def _token_rows_cost(lm: LanguageModel, problem: Problem, batch_size: int) -> Cost:
    """Passes of `_token_rows` for one alpha's heatmap: a forward a block, its backwards.

    With recompute every backward runs the block's forward again."""
    cost = Cost(0, 0, 0, 0)
    for block in plan_token_blocks(lm, problem, batch_size):
        rows = block.last - block.first + 1
        again = block.backward_calls * block.length if block.recompute else 0
        cost = cost + Cost(1, 1, block.backward_calls, block.length + again, rows * block.length)
    return cost


@predicts("grad_norm")
@predicts("grad_x_input")
def simple_gradient_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: GradientParams, matrix: bool
) -> Cost:
    """One row for the whole target, or one per target token for the matrix; per part."""
    cost = Cost(0, 0, 0, 0)
    for part, _ in quantity.parts(problem):
        if matrix:
            cost = cost + _token_rows_cost(lm, part, params.batch_size)
        else:
            cost = cost + _rows_cost(lm, part, 1, params.batch_size)
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
                    cost = cost + _token_rows_cost(lm, part, params.batch_size)
            else:
                cost = cost + _rows_cost(lm, part, n_steps, params.batch_size)
    return cost.bound() if len(schedule) > 1 else cost
