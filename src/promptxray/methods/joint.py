"""Joint attribution: xprompt, the probabilistic swap search of XPrompt (Algorithm 1).

Single-unit methods miss units that matter only together ("publish" and "book":
masking either alone changes little, masking both changes the answer). xprompt
looks for the set S of k units whose joint masking lowers
L(S) = log p(target | prompt with S masked) (summed over target tokens) the most.

1. One gradient g = dL/dm at m = 1, where m_u scales the input embeddings of unit u,
   so g_u = sum over u's tokens of grad . embedding. To first order, masking u
   (m_u: 1 -> 0) changes L by -g_u, so the k units with the largest *signed* g
   are the ones whose removal lowers L most: they are the initial S. (Taking the
   largest |g| would also pick units whose removal raises L.)
2. For N iterations: draw a unit l outside S and a unit v inside S, each with
   probability softmax(|g|) over its side, swap them, and keep the swap if L drops.

Our extension: `proposals_per_step = B` draws B swaps per iteration, scores them
in one batched forward (sharing the KV cache of the current context's prefix)
and keeps the best one if it improves L. Sets already scored are remembered, so a
repeated proposal costs no forward pass.

Scores shown per unit: 1.0 for the selected units, 0.0 for the rest; the result
is the set (`selected`), not a ranking. The signed gradient per unit is kept in
`extra["gradient"]` for anyone who wants a ranking inside or outside the set.
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch

from ..errors import InvalidParameterError
from ..masking import DEFAULT_OPERATOR, MaskedContext, check_operator, mask_context
from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem
from .base import MethodOutput, ProgressFn, register
from .perturbation import as_int


def unit_gradient(lm: LanguageModel, problem: Problem, units: list[Unit]) -> torch.Tensor:
    """dL/dm_u for every unit at m = 1, where m_u multiplies the unit's input embeddings.

    L is the summed log-probability of the target; one forward and one backward.
    """
    ids = torch.tensor([problem.ids], device=lm.device)
    owner = torch.full((len(problem.ids),), -1, dtype=torch.long)
    sources = problem.source_positions
    for u, unit in enumerate(units):
        owner[[sources[t] for t in unit.tokens]] = u
    owner = owner.to(lm.device)
    with lm.lock:
        base = lm.embed(ids).detach()
        m = torch.ones(len(units), device=lm.device, dtype=base.dtype, requires_grad=True)
        ones = torch.ones(len(problem.ids), device=lm.device, dtype=base.dtype)
        scale = torch.where(owner >= 0, m[owner.clamp(min=0)], ones)
        logprobs = lm.target_logprobs(
            ids, problem.target_start, inputs_embeds=base * scale[:, None]
        )
        (grad,) = torch.autograd.grad(logprobs.sum(), m)
        lm.count_backward()
    return grad.detach().float().cpu()


def initial_selection(gradient: list[float], k: int) -> list[int]:
    """The k units whose masking the first-order term says lowers L most: largest signed dL/dm.

    Masking unit u moves m_u from 1 to 0, so L(masked) ~ L - g_u: a large positive
    g_u means a large drop. Ties go to the earlier unit.
    """
    order = sorted(range(len(gradient)), key=lambda u: (-gradient[u], u))
    return sorted(order[:k])


def _softmax_weights(values: list[float]) -> list[float]:
    top = max(values)
    return [math.exp(v - top) for v in values]


class _Objective:
    """L(S) for unit sets, scored in batches and remembered, with a count of forward passes."""

    def __init__(
        self,
        lm: LanguageModel,
        problem: Problem,
        units: list[Unit],
        masking: str,
        batch_size: int,
    ) -> None:
        self.lm, self.problem, self.units = lm, problem, units
        self.masking, self.batch_size = masking, batch_size
        self.known: dict[frozenset[int], float] = {}
        self.forward_passes = 0

    def context(self, chosen: frozenset[int]) -> MaskedContext:
        return mask_context(self.lm, self.problem, self.units, sorted(chosen), self.masking)

    def __call__(
        self, sets: list[frozenset[int]], reference: frozenset[int] | None = None
    ) -> list[float]:
        new = list(dict.fromkeys(s for s in sets if s not in self.known))
        if new:
            contexts = [self.context(s) for s in new]
            ref = self.context(reference) if reference is not None and len(new) > 1 else None
            logprobs = self.lm.score_variants(
                contexts, self.problem.target_ids, self.batch_size, reference=ref
            )
            for s, row in zip(new, logprobs, strict=True):
                self.known[s] = float(row.sum())
            self.forward_passes += len(new)
        return [self.known[s] for s in sets]


@register(
    "xprompt",
    "joint",
    token_level=False,
    description=(
        "XPrompt: the k units whose joint masking lowers log p(target) most, by a "
        "gradient-guided swap search (k, iterations, proposals_per_step, seed, masking)."
    ),
)
def xprompt(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    k: int = 3,
    iterations: int = 50,
    proposals_per_step: int = 1,
    seed: int = 0,
    masking: str = DEFAULT_OPERATOR,
    batch_size: int = 16,
    progress: ProgressFn | None = None,
    **_: Any,
) -> MethodOutput:
    """Search the set S (|S| = k) that minimises L(S) = log p(target | prompt with S masked).

    `extra["trajectory"]` is L after the initial set, then after every iteration; it
    never increases, since a swap is kept only when it lowers L.
    `extra["forward_pass_trajectory"]` is the matching count of masked prompts scored
    so far (the unmasked baseline and the initial set included; the gradient pass
    and the shared-prefix passes are not), so searches with different
    `proposals_per_step` can be compared at equal cost.
    """
    check_operator(masking)
    k = as_int("k", k, 1)
    iterations = as_int("iterations", iterations, 0)
    proposals_per_step = as_int("proposals_per_step", proposals_per_step, 1)
    seed = as_int("seed", seed)
    batch_size = as_int("batch_size", batch_size, 1)
    n = len(units)
    if k > n:
        raise InvalidParameterError(
            f"k = {k} but the prompt has only {n} units at this granularity; "
            f"choose k between 1 and {n} (or a finer granularity)."
        )
    gradient = unit_gradient(lm, problem, units).tolist()
    weight = _softmax_weights([abs(g) for g in gradient])
    objective = _Objective(lm, problem, units, masking, batch_size)
    (baseline,) = objective([frozenset()])
    start = frozenset(initial_selection(gradient, k))
    chosen = start
    (value,) = objective([chosen], reference=frozenset())
    trajectory = [value]
    spent = [objective.forward_passes]
    accepted = 0
    rng = random.Random(seed)
    for step in range(iterations):
        outside = [u for u in range(n) if u not in chosen]
        if outside:
            inside = sorted(chosen)
            proposals = []
            for _ in range(proposals_per_step):
                (add,) = rng.choices(outside, weights=[weight[u] for u in outside])
                (drop,) = rng.choices(inside, weights=[weight[u] for u in inside])
                proposals.append((chosen - {drop}) | {add})
            values = objective(proposals, reference=chosen)
            best = min(range(len(proposals)), key=lambda i: values[i])
            if values[best] < value:
                chosen, value = proposals[best], values[best]
                accepted += 1
        trajectory.append(value)
        spent.append(objective.forward_passes)
        if progress:
            progress(step + 1, iterations)
    selected = sorted(chosen)
    return MethodOutput(
        scores=[1.0 if u in chosen else 0.0 for u in range(n)],
        selected=selected,
        extra={
            "masking": masking,
            "k": k,
            "iterations": iterations,
            "proposals_per_step": proposals_per_step,
            "seed": seed,
            "objective": value,
            "baseline_objective": baseline,
            "log_prob_drop": baseline - value,
            "initial_selection": sorted(start),
            "initial_objective": trajectory[0],
            "trajectory": trajectory,
            "forward_pass_trajectory": spent,
            "accepted_swaps": accepted,
            "search_forward_passes": objective.forward_passes,
            "gradient": gradient,
        },
    )
