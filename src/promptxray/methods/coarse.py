"""Masked groups of units, and the coarse pass that prunes long prompts.

Long prompts have hundreds of words but tens of sentences, and a word rarely
matters much inside a sentence that does not (AttriBoT's observation). Both
hierarchical leave-one-out and xprompt's pruning therefore start the same way:
mask every coarse unit (sentence, line, paragraph) once, rank the coarse units by
|drop|, look closer only inside the strongest, and give every unit of the others
an equal share of its coarse unit's drop. That pass lives here, once, so the two
methods cannot drift apart in what they measure or how they rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..masking import mask_context
from ..model import LanguageModel
from ..record import Hierarchy
from ..segments import Unit, group_units
from ..targets import Problem
from . import quantity
from .base import Cost, ProgressFn


def masked_drops(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    groups: list[list[int]],
    masking: str,
    batch_size: int,
    progress: ProgressFn | None,
    full_logprobs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row log p(target) of the full context (scored here unless given), and per
    group of units the per-row drop when the whole group is masked: [n_groups,
    n_rows]. One batched run sharing the full context's prefix (one a part)."""
    full = mask_context(lm, problem, units, [], masking)
    variants = [mask_context(lm, problem, units, g, masking) for g in groups]
    if full_logprobs is None:
        variants.insert(0, full)
    logprobs = quantity.score_rows(
        lm, problem, variants, batch_size, reference=full, progress=progress
    )
    if full_logprobs is None:
        full_logprobs, logprobs = logprobs[0], logprobs[1:]
    return full_logprobs, full_logprobs[None] - logprobs


def coarse_members(problem: Problem, units: list[Unit], coarse: str) -> list[list[int]]:
    """The units each coarse unit holds (indices into `units`), in reading order."""
    coarse_units, owner = group_units(units, problem.role_text, coarse)
    members: list[list[int]] = [[] for _ in coarse_units]
    for i, c in enumerate(owner):
        members[c].append(i)
    return members


def strongest(
    members: list[list[int]], strength: list[float], refine: int, at_least: int = 0
) -> list[int]:
    """The `refine` coarse units with the largest `strength`, then the next ones while
    those picked hold fewer than `at_least` units; strongest first (ties: earlier).

    The methods pick by |score|; their cost predictors pick by size, to bound the
    most units the methods could go on to score."""
    order = sorted(range(len(members)), key=lambda c: (-strength[c], c))
    picked: list[int] = []
    held = 0
    for rank, c in enumerate(order):
        if rank >= refine and held >= at_least:
            break
        picked.append(c)
        held += len(members[c])
    return picked


def sizes(members: list[list[int]]) -> list[float]:
    """Each coarse unit's number of units, as a `strength` for bounds."""
    return [float(len(group)) for group in members]


@dataclass(frozen=True)
class CoarsePass:
    """Every coarse unit masked once: what the pruning methods decide from.

    `members[c]` are the units coarse unit c holds (never empty), `full` the unmasked
    prompt's per-row log p(target) and `drop[c]` the per-row drop with c masked.
    """

    coarse: str
    members: list[list[int]]
    full: torch.Tensor
    drop: torch.Tensor

    @property
    def scores(self) -> list[float]:
        """Each coarse unit's drop summed over the target rows (its leave-one-out score)."""
        return self.drop.sum(1).tolist()

    @property
    def spread(self) -> list[float]:
        """Each coarse unit's drop summed in magnitude over the target rows: at least
        |score|, and what no unit inside it exceeds if no unit moves any target token's
        log-probability more than the whole coarse unit does (hierarchical
        leave-one-out's bound; see `refinement`)."""
        return self.drop.abs().sum(1).tolist()

    def strongest(self, refine: int, at_least: int = 0) -> list[int]:
        """The coarse units to look into, strongest |score| first (see `strongest`)."""
        return strongest(self.members, self.drop.sum(1).abs().tolist(), refine, at_least)

    def shared_rows(self, n_units: int) -> torch.Tensor:
        """Per unit and target row, an equal share of its coarse unit's drop: [n_units, n_rows]
        (the heatmap's estimate for the units nobody looks at more closely)."""
        rows = torch.zeros(n_units, self.full.shape[0])
        for c, group in enumerate(self.members):
            rows[group] = self.drop[c] / len(group)
        return rows

    def shared_scores(self, n_units: int) -> list[float]:
        """Per unit, an equal share of its coarse unit's summed drop (for methods without
        a heatmap; the sum is taken before the share, as `scores` reports it)."""
        shares = [0.0] * n_units
        for group, drop in zip(self.members, self.scores, strict=True):
            for i in group:
                shares[i] = drop / len(group)
        return shares

    def hierarchy(
        self, looked_into: int, refined: list[int], passes: int | None = None
    ) -> Hierarchy:
        """What the result records of the pass: the coarse granularity, how many coarse
        units there were, how many were looked into, their scores and the units scored
        exactly (`refined`); `passes` when the caller counts the coarse pass apart."""
        return Hierarchy(
            coarse=self.coarse,
            coarse_units=len(self.members),
            coarse_refined=looked_into,
            coarse_scores=self.scores,
            refined=refined,
            coarse_passes=passes,
        )


def coarse_pass(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    coarse: str,
    masking: str,
    batch_size: int,
    progress: ProgressFn | None,
) -> CoarsePass:
    """Mask every coarse unit of `units` once, in one prefix-shared run with the unmasked
    prompt: 1 + (coarse units) scored prompts."""
    members = coarse_members(problem, units, coarse)
    full, drop = masked_drops(lm, problem, units, members, masking, batch_size, progress)
    return CoarsePass(coarse, members, full, drop)


def coarse_pass_cost(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    members: list[list[int]],
    masking: str,
    batch_size: int,
) -> Cost:
    """The passes `coarse_pass` makes: its own scorer's plan, exact."""
    full = mask_context(lm, problem, units, [], masking)
    variants = [mask_context(lm, problem, units, g, masking) for g in members]
    return quantity.rows_cost(lm, problem, [full, *variants], batch_size, full)
