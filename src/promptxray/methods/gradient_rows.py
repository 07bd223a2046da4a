"""How gradient rows run: the engine under grad_norm, grad_x_input and integrated_gradients.

A row is one gradient: of the whole target's log-probability (at an interpolation
factor alpha for integrated gradients) or of one target token's (a heatmap row).
Whole-target rows each need their own forward, so they run as batched copies of
the sequence. Heatmap rows share one: the activations are the same for every row,
so blocks of target tokens run forward once, stopped at the block's last token (a
causal row depends only on its prefix), and backward once per row.
`model.memory.plan_backward` sizes every batch; the costs below follow the same plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..model import LanguageModel
from ..targets import Problem
from .base import Cost, ProgressFn

# A gradient row: (interpolation factor alpha for the source embeddings, target token
# whose log-prob is differentiated, or None for the sum over all target tokens).
Row = tuple[float, int | None]


def gradient_rows(
    lm: LanguageModel,
    problem: Problem,
    rows: list[Row],
    batch_size: int,
    progress: ProgressFn | None,
    *,
    logits: bool = False,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield (row indices, grads [B, T, H], scaled inputs [B, T, H]) batch by batch.

    What is differentiated is each target token's log-probability, or with `logits` its
    logit before the softmax (what relevance propagation explains).

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
        summed_rows = [(i, rows[i][0]) for i in summed]
        yield from _summed_rows(lm, problem, ids, base, summed_rows, batch_size, counter, logits)
        tokens = [(i, rows[i][0], rows[i][1]) for i in per_token]
        yield from _token_rows(lm, problem, ids, base, tokens, batch_size, counter, logits)


def _target_scores(
    lm: LanguageModel, ids: torch.Tensor, start: int, inputs: torch.Tensor, logits: bool
) -> torch.Tensor:
    """Per target token: log p (teacher-forced), or the logit of that token: [B, n_target]."""
    if not logits:
        return lm.target_logprobs(ids, start, inputs_embeds=inputs)
    n = ids.shape[1] - start
    out = lm.forward_last(n + 1, inputs_embeds=inputs).logits[:, -(n + 1) : -1, :].float()
    return out.gather(-1, ids[:, start:].unsqueeze(-1)).squeeze(-1)


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
    logits: bool = False,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Rows differentiating the summed log p(target): one copy of the sequence each,
    batched as `plan_backward` allows."""
    step, recompute = lm.plan_backward(ids.shape[1], batch_size)
    for first in range(0, len(rows), step):
        chunk = rows[first : first + step]
        inputs = _scaled(base, problem, [a for _, a in chunk]).to(lm.dtype).requires_grad_(True)
        with lm.recomputing_layers(recompute):
            scores = _target_scores(
                lm, ids.expand(len(chunk), -1), problem.target_start, inputs, logits
            )
            (grads,) = torch.autograd.grad(scores.sum(), inputs)
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
    logits: bool = False,
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
                logprobs = _target_scores(lm, ids[:, : block.length], start, inputs, logits)[0]
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


# ----- what they cost (the gradient methods' predictors add these up) -------------------------
def rows_cost(lm: LanguageModel, problem: Problem, n_rows: int, batch_size: int) -> Cost:
    """Passes of `_summed_rows` over `n_rows` rows: one forward and backward a batch."""
    length = len(problem.ids)
    step, recompute = lm.plan_backward(length, batch_size)
    calls = -(-n_rows // step)
    forward_rows = n_rows * length * (2 if recompute else 1)  # recompute: the forward again
    return Cost(n_rows, calls, calls, forward_rows, n_rows * length)


def token_rows_cost(lm: LanguageModel, problem: Problem, batch_size: int) -> Cost:
    """Passes of `_token_rows` for one alpha's heatmap: a forward a block, its backwards.

    With recompute every backward runs the block's forward again."""
    cost = Cost(0, 0, 0, 0)
    for block in plan_token_blocks(lm, problem, batch_size):
        rows = block.last - block.first + 1
        again = block.backward_calls * block.length if block.recompute else 0
        cost = cost + Cost(1, 1, block.backward_calls, block.length + again, rows * block.length)
    return cost
