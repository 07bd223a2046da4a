"""context_cite: a sparse linear surrogate of the target over random ablations of the prompt.

ContextCite (Cohen-Wang et al., NeurIPS 2024): score R random half-ablations of the
prompt's units (each dropped with probability ½, the sampler the faithfulness check
uses, `ablation_sets`), fit a Lasso of the target's log-odds on the 0/1 keep-masks
(`surrogate`), and report the weights: how much a unit's presence raises the log-odds
of the target. The ablations are drawn from a generator seeded by the prompt and a
label of their own, so they are never the check's; their per-token log-probabilities
are kept with the result (`record.KeptAblations`), so any span of the output can be
explained again from them with no forward pass (`retarget`).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from pydantic import Field

from ..ablation_sets import half_ablations, seeded
from ..attribution import Attribution
from ..errors import InvalidParameterError, SpanError
from ..masking import DEFAULT_OPERATOR, Operator, mask_context
from ..model import LanguageModel, MaskedContext, Span
from ..record import KeptAblations, MaskedScores, RunCost
from ..segments import Unit
from ..targets import Problem
from . import quantity, surrogate
from .base import (
    Aggregation,
    Cost,
    Family,
    MethodOutput,
    MethodParams,
    ProgressFn,
    predicts,
    register,
)

# Fewer ablations than this leave a fold of one or two: no fit and no LDS worth the name.
MIN_ABLATIONS = 8
# The label of context_cite's draws (the check draws under "lds" and "sets").
SEED_LABEL = "context_cite"


class ContextCiteParams(MethodParams):
    ablations: int = Field(
        64,
        ge=MIN_ABLATIONS,
        le=4096,
        description="Random half-ablations of the prompt scored and fitted (the paper's 64).",
    )
    alpha: float = Field(
        0.01,
        gt=0,
        le=100,
        description=(
            "Lasso regularisation on standardised keep-masks, per target token (the "
            "paper's 0.01); larger: fewer units with a weight."
        ),
    )
    seed: int = Field(0, description="Mixed with the prompt: which ablations are drawn.")
    masking: Operator = Field(DEFAULT_OPERATOR, description="How a unit is removed.")
    batch_size: int = Field(
        16, ge=1, le=4096, description="Masked prompts per batched forward (memory only)."
    )

    def check_units(self, n_units: int) -> None:
        if n_units < 2:
            raise InvalidParameterError(
                f"context_cite needs at least two units to ablate; this prompt has {n_units} "
                "at this granularity (choose a finer one).",
                param="granularity",
            )


def dropped_sets(problem: Problem, units: list[Unit], params: ContextCiteParams) -> list[list[int]]:
    """The units each ablation removes: drawn from the prompt's own generator (its ids, its
    units, the seed and context_cite's label), so a prompt always gets the same ones and a
    span of its output the same ones as the whole output."""
    rng = seeded(problem.encoding.ids, units, params.seed, SEED_LABEL)
    return half_ablations(rng, len(units), params.ablations)


def keep_masks(n_units: int, dropped: list[list[int]]) -> list[list[int]]:
    """0/1 rows: 1 where the ablation kept the unit."""
    masks = []
    for removed in dropped:
        gone = set(removed)
        masks.append([0 if i in gone else 1 for i in range(n_units)])
    return masks


def _contexts(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: ContextCiteParams
) -> tuple[list[list[int]], list[MaskedContext]]:
    """The keep-masks and the contexts to score: the unmasked one first, then each ablation."""
    dropped = dropped_sets(problem, units, params)
    full = mask_context(lm, problem, units, [], params.masking)
    variants = [mask_context(lm, problem, units, d, params.masking) for d in dropped]
    return keep_masks(len(units), dropped), [full, *variants]


@register(
    "context_cite",
    Family.PERTURBATION,
    params=ContextCiteParams,
    aggregation=Aggregation.FIXED,
    signed=True,
    description=(
        "Lasso weights of the target's log-odds on random half-ablations of the units "
        "(ContextCite); any span of the output re-explained without a forward pass."
    ),
    scores_unmasked=True,
)
def context_cite(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: ContextCiteParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    """Weights of a Lasso fit of the target's log-odds on R keep-masks, one run of R + 1
    prefix-sharing masked prompts.

    The target is the log-odds of p(target) (all its tokens together), or for a contrast
    log p(target) − log p(contrast). The LDS recorded with the result (`record.kept.lds`)
    is out-of-fold: each quarter of the ablations is predicted by a fit on the other
    three, so it is measured on ablations the fit did not see, at no extra pass; the
    reported weights are the fit on all R. With `matrix`, row j is the same fit for output
    token j alone (its own log-odds): exactly what re-targeting that one token gives.
    """
    keep, contexts = _contexts(lm, problem, units, params)
    rows = quantity.score_rows(
        lm, problem, contexts, params.batch_size, reference=contexts[0], progress=progress
    )
    log_probs = rows.double().numpy()
    kind = surrogate.LOG_ODDS if problem.contrast_ids is None else surrogate.CONTRAST
    a, b = problem.target_token_range
    kept = KeptAblations(
        keep=keep,
        log_probs=log_probs[1:].tolist(),
        unmasked=log_probs[0].tolist(),
        token_spans=[list(s) for s in problem.output_spans[a:b]],
        rows=[0, log_probs.shape[1]],
        quantity=kind,
        alpha=params.alpha,
        folds=surrogate.FOLDS,
        intercept=0.0,
        pieces=problem.target_pieces(lm),
    )
    weights, kept = fit_rows(kept, (0, log_probs.shape[1]))
    return MethodOutput(
        scores=weights,
        matrix=token_rows(kept, 0, log_probs.shape[1]) if matrix else None,
        masked=MaskedScores(float(log_probs[0].sum()), variants_scored=len(contexts)),
        kept=kept,
    )


def fit_rows(kept: KeptAblations, rows: tuple[int, int]) -> tuple[list[float], KeptAblations]:
    """The surrogate of rows [start, end) of the kept ablations: its weights, and the
    section recording this fit (its rows, intercept, out-of-fold LDS)."""
    keep = np.asarray(kept.keep, dtype=np.float64)
    y = surrogate.targets(np.asarray(kept.log_probs), rows, kept.quantity)
    tokens = rows[1] - rows[0]
    found = surrogate.fit(keep, y, kept.alpha, tokens)
    lds = surrogate.held_out_lds(keep, y, kept.alpha, tokens)
    section = replace(
        kept,
        rows=list(rows),
        intercept=found.intercept,
        lds=lds,
        converged=found.converged,
    )
    return found.weights.tolist(), section


def token_rows(kept: KeptAblations, start: int, end: int) -> list[list[float]]:
    """One surrogate per output row in [start, end): each token's own log-odds (a
    contrast's rows: minus the log-odds of its token), fitted on the same ablations."""
    keep = np.asarray(kept.keep, dtype=np.float64)
    log_probs = np.asarray(kept.log_probs, dtype=np.float64)
    n_target = len(kept.token_spans)
    out = []
    for j in range(start, end):
        sign = 1.0 if j < n_target else -1.0
        y = sign * surrogate.log_odds(sign * log_probs[:, j])
        out.append(surrogate.fit(keep, y, kept.alpha, 1).weights.tolist())
    return out


@predicts("context_cite")
def context_cite_cost(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: ContextCiteParams,
    matrix: bool,
) -> Cost:
    """Exact: the unmasked prompt and the R ablations in one prefix-shared run (the fits
    cost no pass; the heatmap's per-token fits neither)."""
    _, contexts = _contexts(lm, problem, units, params)
    return quantity.rows_cost(lm, problem, contexts, params.batch_size, contexts[0])


def retarget(attribution: Attribution, span: Span) -> Attribution:
    """The result for another span of its output, fitted again from the ablations it kept:
    the same units, new weights, a new out-of-fold LDS; no model and no forward pass.

    `span` is [start, end) in characters of the output, as `explain(span=)` takes it; the
    tokens it touches must lie in the target whose run scored the ablations. The units
    stay those of that run: output before the span that was not a unit then stays as it
    was in every ablation (an `explain` of the span would make it a unit of its own). The
    result carries no faithfulness check (that needs the model: `check_result`).
    """
    started = time.perf_counter()
    kept = attribution.record.kept
    if kept is None:
        raise InvalidParameterError(
            f"This {attribution.method} result kept no ablations, so another span needs the "
            "model: explain that span (context_cite results keep theirs).",
            param="result",
        )
    if not kept.retargetable:
        raise InvalidParameterError(
            "A contrast result cannot be re-targeted: its scores are of the target against "
            "the contrast as a whole; explain the span with its contrast instead.",
            param="result",
        )
    a, b = rows_in_span(kept.token_spans, span)
    scored = kept.retargeted_from or [kept.token_spans[0][0], kept.token_spans[-1][1]]
    weights, section = fit_rows(replace(kept, retargeted_from=list(scored)), (a, b))
    matrix = token_rows(section, a, b) if attribution.base_matrix is not None else None
    record = replace(
        attribution.record,
        kept=section,
        masked=MaskedScores(float(sum(kept.unmasked[a:b])), variants_scored=len(kept.keep) + 1),
        check=None,
        cost=RunCost(seconds=time.perf_counter() - started),
    )
    return replace(
        attribution,
        target_span=(kept.token_spans[a][0], kept.token_spans[b - 1][1]),
        target_tokens=list(kept.pieces[a:b]),
        base_scores=weights,
        base_matrix=matrix,
        record=record,
    )


def rows_in_span(token_spans: list[list[int]], span: Span) -> tuple[int, int]:
    """The kept rows [first, last + 1) whose tokens overlap characters [start, end) of the
    output (`targets.build_problem`'s rule for a span)."""
    start, end = int(span[0]), int(span[1])
    low, high = token_spans[0][0], token_spans[-1][1]
    if not low <= start < end <= high:
        raise SpanError(
            f"Span {start}:{end} is outside the target these ablations scored (characters "
            f"{low}:{high} of the output); give START:END with {low} <= START < END <= {high}.",
            param="span",
        )
    inside = [i for i, (x, y) in enumerate(token_spans) if y > start and x < end and y > x]
    if not inside:
        raise SpanError(f"Span {start}:{end} covers no output token.", param="span")
    return inside[0], inside[-1] + 1
