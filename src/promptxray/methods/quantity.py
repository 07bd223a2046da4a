"""What every method attributes: log p(target | context), or for a contrast
log p(A | context) - log p(B | context).

"Why A and not B" is two teacher-forced targets from one context. Every method sees
the quantity as signed rows, one per target token: A's tokens, then B's with their
sign flipped. A row sum is the quantity, a heatmap has a row for each token of
each, and masking, gradients and searches need no case of their own: they score
or differentiate each part and add the parts with their signs. Contexts are
shared, so positions before the target mean the same in both parts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..model import LanguageModel, MaskedContext
from ..record import ContrastReport, ContrastScores
from ..segments import Unit
from ..targets import Problem
from .base import Cost, ProgressFn
from .costs import variant_cost


def parts(problem: Problem) -> list[tuple[Problem, float]]:
    """The teacher-forced targets and their signs: the target, and the contrast if any."""
    if problem.contrast_ids is None:
        return [(problem, 1.0)]
    return [(problem, 1.0), (problem.contrast_problem(), -1.0)]


def n_rows(problem: Problem) -> int:
    """Heatmap rows: the target's tokens, then the contrast's."""
    return sum(len(part.target_ids) for part, _ in parts(problem))


def score_rows(
    lm: LanguageModel,
    problem: Problem,
    variants: list[MaskedContext],
    batch_size: int,
    *,
    reference: MaskedContext | None = None,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Signed per-row log-probs of every variant context: [n_variants, n_rows].

    One batched, prefix-sharing scoring run per part (see `score_variants`)."""
    columns = []
    split = split_progress(progress, len(parts(problem)))
    for k, (part, sign) in enumerate(parts(problem)):
        logprobs = lm.score_variants(
            variants, part.target_ids, batch_size, reference=reference, progress=split(k)
        )
        columns.append(sign * logprobs)
    return torch.cat(columns, dim=1)


def rows_cost(
    lm: LanguageModel,
    problem: Problem,
    variants: list[MaskedContext],
    batch_size: int,
    reference: MaskedContext | None = None,
) -> Cost:
    """The passes `score_rows` will make: one scoring plan per part."""
    cost = Cost(0, 0, 0, 0)
    for part, _ in parts(problem):
        cost = cost + variant_cost(lm, variants, part.target_ids, batch_size, reference)
    return cost


def split_progress(progress: ProgressFn | None, n_parts: int) -> Callable[[int], ProgressFn | None]:
    """Progress of part k of `n_parts` equal parts, as a share of the whole (in 1/1000s)."""

    def for_part(k: int) -> ProgressFn | None:
        if progress is None:
            return None
        if n_parts == 1:
            return progress

        def report(done: int, total: int) -> None:
            share = (k + done / max(1, total)) / n_parts
            progress(round(1000 * share), 1000)

        return report

    return for_part


# Units masked for the "after" half of a contrast report (a joint method's own set instead).
REPORT_TOP_UNITS = 3


def contrast_report(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    masked: list[int],
) -> ContrastReport:
    """log p(A), log p(B) and their difference with the full context and with `masked`
    units deleted: what a contrast result shows next to its scores. Scored in one
    prefix-sharing run per part; the tool's work, not the method's."""
    from ..masking import mask_context

    contexts = [mask_context(lm, problem, units, []), mask_context(lm, problem, units, masked)]
    sums = {}
    for (part, _), name in zip(parts(problem), ("target", "contrast"), strict=True):
        logprobs = lm.score_variants(contexts, part.target_ids, reference=contexts[0])
        sums[name] = logprobs.sum(1).tolist()
    full, cut = (
        ContrastScores(
            sums["target"][i], sums["contrast"][i], sums["target"][i] - sums["contrast"][i]
        )
        for i in (0, 1)
    )
    return ContrastReport(
        target=problem.target_text,
        contrast=problem.contrast or "",
        contrast_tokens=len(problem.contrast_ids or []),
        full=full,
        masked=cut,
        masked_units=[units[i].text for i in masked],
        masking="delete",
        same_text=problem.contrast == problem.target_text,
    )
