"""grad_x_input's heatmap at coarse units, by forward-mode derivatives.

grad_x_input is linear in the embeddings, so a unit's whole column of the heatmap
(one value per target token) is one directional derivative: along "the unit's own
embeddings, zero elsewhere". With few units (sentences, turns) and many target
tokens that is cheaper than a backward per target token. `UNIT_HEATMAP` is the
`UnitMatrix` grad_x_input registers; its parameters (`unit_heatmap`, `batch_size`)
are grad_x_input's.
"""

from __future__ import annotations

from typing import Any

import torch

from ..model import LanguageModel, memory
from ..segments import Unit
from ..targets import Problem
from . import quantity
from .base import Cost, ProgressFn, UnitMatrix

# A forward with tangents (forward-mode derivatives) costs about as much as three rows
# of the shared-forward token heatmap: measured on the default model at 141 tokens,
# 1.5 s a unit against 0.45 s a row, one thread.
FORWARD_MODE_ROW_COST = 3


def _applies(problem: Problem, units: list[Unit], params: Any) -> bool:
    """Forward mode pays when there are at most a third as many units as target tokens."""
    n_units = len(units)
    return params.unit_heatmap and 0 < n_units * FORWARD_MODE_ROW_COST <= quantity.n_rows(problem)


# Token positions one forward-mode call may compute on a CPU: the primal once plus one
# tangent per unit, each about a forward's work. Every call recomputes the primal, so
# one tangent a call costs twice the work and a few cost (n + 1) / n: measured on the
# default model at 268 tokens, a 12-sentence heatmap took 46.5 s with one tangent a
# call and 22.1-22.6 s with three or more. At 2,400 positions (8 tangents at 268
# tokens) a call runs several seconds, so cancel is checked between decoder layers
# (`LanguageModel.beating_between_layers`) rather than between calls.
CPU_FORWARD_MODE_TOKENS = 2400
# Each tangent carries its own logits over the vocabulary at every target position
# (float32, the log-softmax and its tangent besides): about 12 bytes a number.
_LOGIT_BYTES = 12


def _unit_rows_per_call(lm: LanguageModel, problem: Problem, batch_size: int) -> int:
    """Units (tangents) per forward-mode call: `batch_size`, as many as keep their
    logits under the memory budget (a 262k vocabulary holds few), and on a CPU as
    many as fit `CPU_FORWARD_MODE_TOKENS` with the primal."""
    vocab = lm.model.get_output_embeddings().weight.shape[0]
    by_logits = memory.BUDGET_BYTES // (len(problem.target_ids) * vocab * _LOGIT_BYTES)
    rows = min(batch_size, by_logits)
    if lm.device.type == "cpu":
        rows = min(rows, CPU_FORWARD_MODE_TOKENS // len(problem.ids) - 1)
    return max(1, rows)


def unit_heatmap(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: Any,
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

    done = 0

    def beat() -> None:  # a cancel lands within one decoder layer of a long call
        if progress:
            progress(done, len(units))

    with lm.lock, torch.no_grad(), lm.beating_between_layers(beat if progress else None):
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
            done = min(first + step, len(units))
            beat()
    return torch.cat(columns)


def unit_heatmap_cost(lm: LanguageModel, problem: Problem, units: list[Unit], params: Any) -> Cost:
    """One call (the primal once, a tangent per unit, each about a forward) per chunk
    of units and part."""
    cost = Cost(0, 0, 0, 0)
    for part, _ in quantity.parts(problem):
        step = _unit_rows_per_call(lm, part, params.batch_size)
        calls = -(-len(units) // step)
        cost = cost + Cost(calls, calls, 0, (calls + len(units)) * len(part.ids))
    return cost


UNIT_HEATMAP = UnitMatrix(_applies, unit_heatmap, unit_heatmap_cost)
