"""The joint methods' objective: L(S) for unit sets S, scored, remembered and budgeted.

Joint attribution looks for the set S, |S| = k, minimising

    L(S) = log p(target | prompt with the units of S masked)   (summed over target tokens).

Both joint methods (xprompt's search, `joint_search`; the paper's Algorithm 1,
`joint_paper`) evaluate L through one `Objective`, which scores sets in
shared-prefix batches, remembers them, counts every scored prompt against a budget
and reports progress; and both start from the same gradient dL/dm of L with
respect to a per-unit scale m of the input embeddings (`unit_gradient`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from pydantic import Field

from ..errors import InvalidParameterError
from ..masking import MaskedContext, mask_context
from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem
from . import quantity
from .base import Cost, MethodParams, ProgressFn

Units = frozenset[int]


class JointParams(MethodParams):
    """What every joint method takes: the set size, the proposals' seed, the batch size."""

    k: int = Field(3, ge=1, le=1000, description="Size of the unit set masked jointly.")
    seed: int = Field(0, description="Seed of the proposal draws.")
    batch_size: int = Field(
        16, ge=1, le=4096, description="Masked prompts per batched forward (memory only)."
    )

    def check_units(self, n_units: int) -> None:
        if self.k > n_units:
            raise InvalidParameterError(
                f"k = {self.k} but the prompt has only {n_units} units at this granularity; "
                f"choose k between 1 and {n_units} (or a finer granularity).",
                param="k",
            )


def unit_gradient(lm: LanguageModel, problem: Problem, units: list[Unit]) -> torch.Tensor:
    """dL/dm_u for every unit at m = 1, where m_u multiplies the unit's input embeddings.

    L is the attributed quantity (the target's summed log-probability, minus the
    contrast's if any); one forward and one backward per part.
    """
    grad = torch.zeros(len(units))
    for part, sign in quantity.parts(problem):
        grad += sign * _part_unit_gradient(lm, part, units)
    return grad


def _part_unit_gradient(lm: LanguageModel, problem: Problem, units: list[Unit]) -> torch.Tensor:
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


def gradient_cost(problem: Problem) -> Cost:
    """`unit_gradient`: one forward and one backward a part."""
    cost = Cost(0, 0, 0, 0)
    for part, _ in quantity.parts(problem):
        cost = cost + Cost(1, 1, 1, len(part.ids), len(part.ids))
    return cost


class BudgetSpent(Exception):
    """Raised inside the search when the next set would exceed the budget."""


class Objective:
    """L(S) for unit sets: scored in shared-prefix batches, remembered, counted, budgeted.

    `spent` counts every prompt scored (the unmasked one too); a set already known
    costs nothing. `trajectory` records (spent, best L so far) after every batch.
    """

    def __init__(
        self,
        lm: LanguageModel,
        problem: Problem,
        units: list[Unit],
        masking: str,
        batch_size: int,
        k: int,
        budget: int | None = None,
        memo: bool = True,
        progress: ProgressFn | None = None,
    ) -> None:
        self.lm, self.problem, self.units = lm, problem, units
        self.progress = progress
        self.masking, self.batch_size, self.k, self.budget = masking, batch_size, k, budget
        self.memo = memo
        self.known: dict[Units, float] = {}
        self.spent = 0
        self.best = math.inf  # the lowest L among the k-sets scored so far
        self.trajectory: list[tuple[int, float]] = []

    @property
    def left(self) -> int:
        return math.inf if self.budget is None else self.budget - self.spent  # type: ignore[return-value]

    def context(self, chosen: Iterable[int]) -> MaskedContext:
        return mask_context(self.lm, self.problem, self.units, sorted(chosen), self.masking)

    def unknown(self, sets: Iterable[Units]) -> list[Units]:
        if not self.memo:
            return list(dict.fromkeys(sets))
        return [s for s in dict.fromkeys(sets) if s not in self.known]

    def __call__(self, sets: list[Units], reference: Units | None = None) -> list[float]:
        """L of every set; raises BudgetSpent (scoring nothing) if the new ones do not fit."""
        new = self.unknown(sets)
        if len(new) > self.left:
            raise BudgetSpent
        if new:
            contexts = [self.context(s) for s in new]
            ref = self.context(reference) if reference is not None and len(new) > 1 else None
            logprobs = quantity.score_rows(
                self.lm,
                self.problem,
                contexts,
                self.batch_size,
                reference=ref,
                progress=self._batch_progress(),
            )
            for s, row in zip(new, logprobs, strict=True):
                self.known[s] = float(row.sum())
                if len(s) == self.k:
                    self.best = min(self.best, self.known[s])
            self.spent += len(new)
            self.trajectory.append((self.spent, self.best))
        return [self.known[s] for s in sets]

    def _batch_progress(self) -> ProgressFn | None:
        """Progress after every scored batch, not only every phase: the job's cancel
        check rides on it, and one phase (all singles) can be hundreds of prompts."""
        if self.progress is None or self.budget is None:
            return None
        spent, budget, report = self.spent, self.budget, self.progress
        return lambda done, _: report(min(spent + done, budget), budget)

    def fit(self, sets: list[Units]) -> list[Units]:
        """The longest prefix of `sets` whose unknown members fit in the budget."""
        out, cost, seen = [], 0, set()
        for s in sets:
            extra = 0 if s in self.known or s in seen else 1
            if cost + extra > self.left:
                break
            cost += extra
            seen.add(s)
            out.append(s)
        return out

    def finite_trajectory(self) -> list[list[float]]:
        """The trajectory as the results record it: [spent, best L] once a k-set is known."""
        return [[s, b] for s, b in self.trajectory if math.isfinite(b)]
