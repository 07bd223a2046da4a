"""From a checked request to a result: what runs, what it costs, what it records.

`check_request` validates everything that needs no model (method, granularity, the
method's parameters, the check's k); `estimate` predicts the passes and seconds before
anything runs, the faithfulness check included; `run` executes the method, records its
provenance and cost as typed sections, builds the `Attribution` at the granularity
asked, and adds the contrast report and the faithfulness check. `api` re-exports these:
callers never import this module directly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .attribution import Attribution
from .check import check_cost, check_explanation, check_k_given, plan_check, why_not
from .conversation import recorded_messages
from .errors import InvalidParameterError
from .masking import DEFAULT_OPERATOR
from .masking import check_operator as check_operator_name
from .methods import get_method, quantity
from .methods.base import Cost, Family, MethodParams, MethodSpec, ProgressFn
from .methods.costs import Estimate, seconds_for, seconds_per_token
from .model import LanguageModel
from .record import ContrastReport, FaithfulnessCheck, Provenance, RunCost, RunRecord
from .segments import Unit, check_granularity
from .targets import Problem

# Masked prompts per batched forward in the check (its 20 variants in two calls at most).
CHECK_BATCH = 16


@dataclass(frozen=True)
class Request:
    """A checked method request: the spec, its resolved parameters, where it runs."""

    spec: MethodSpec
    params: MethodParams
    granularity: str
    pattern: str | None
    check: bool = True  # the faithfulness check every result carries (`check.py`)
    check_k: int | None = None  # its k: None = 3, or fewer on a prompt of fewer units
    check_operator: str | None = None  # how it removes units: None = the method's masking

    @property
    def base_granularity(self) -> str:
        """Token-level methods compute on tokens; masking methods on the units asked for."""
        return "token" if self.spec.regroupable else self.granularity

    def units(self, problem: Problem) -> list[Unit]:
        """The units the method scores, checked against its parameters (e.g. k <= n)."""
        units = problem.units(self.base_granularity, self.pattern)
        self.params.check_units(len(units))
        return units

    def matrix_units(self, problem: Problem, matrix: bool) -> list[Unit] | None:
        """The view units a heatmap is computed over directly (the method's `unit_matrix`,
        where it applies), or None: the heatmap comes in base units, regrouped."""
        hook = self.spec.unit_matrix
        if not matrix or hook is None or self.granularity in (self.base_granularity, "regex"):
            return None
        units = problem.units(self.granularity, self.pattern)
        return units if hook.applies(problem, units, self.params) else None


def check_request(
    method: str,
    granularity: str = "word",
    pattern: str | None = None,
    params: Mapping[str, Any] | MethodParams | None = None,
    *,
    check: bool = True,
    check_k: int | None = None,
    check_operator: str | None = None,
) -> Request:
    """Validate everything that needs no model: method, granularity, the method's
    parameters, and the faithfulness check's k."""
    spec = get_method(method)
    check_granularity(granularity, pattern)
    resolved = spec.resolve(params)
    check_k_given(check_k)
    if check_operator is not None:
        check_operator_name(check_operator)
    regex = pattern if granularity == "regex" else None
    return Request(spec, resolved, granularity, regex, check, check_k, check_operator)


def estimate(
    lm: LanguageModel,
    problem: Problem,
    request: Request,
    *,
    matrix: bool = False,
    per_token: float | None = None,
) -> Estimate:
    """What `run` will cost, before it runs: the method's predicted passes (a bound where
    the method says so) and seconds from one measured forward of the problem (or the
    `per_token` seconds given, e.g. measured earlier)."""
    units = request.units(problem)
    direct = request.matrix_units(problem, matrix)
    cost = request.spec.predict(lm, problem, units, request.params, matrix and direct is None)
    if direct is not None and request.spec.unit_matrix is not None:
        cost = cost + request.spec.unit_matrix.cost(lm, problem, direct, request.params)
    if request.check:
        cost = cost + _check_cost(lm, problem, request)
    rate = seconds_per_token(lm, problem) if per_token is None else per_token
    return Estimate(request.spec.name, cost, seconds_for(cost, rate), rate)


def _check_cost(lm: LanguageModel, problem: Problem, request: Request) -> Cost:
    """The check's passes at the units the result will show (nothing if it cannot run)."""
    units = problem.units(request.granularity, request.pattern)
    if why_not(problem, units) is not None:
        return Cost(0, 0, 0, 0)
    order = list(range(len(units)))  # which units lead does not change the count
    operator = check_operator_for(request.params.model_dump(), request.check_operator)
    plan = plan_check(
        lm,
        problem,
        units,
        order,
        k=request.check_k,
        operator=operator,
        full_known=request.spec.scores_unmasked,
    )
    return check_cost(lm, problem, plan, CHECK_BATCH)


def run(
    lm: LanguageModel,
    problem: Problem,
    request: Request,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> Attribution:
    """Execute a checked request and package the result with its cost and parameters."""
    spec = request.spec
    units = request.units(problem)
    before = lm.cost.snapshot()
    started = time.perf_counter()
    direct = request.matrix_units(problem, matrix)
    unit_rows = None
    if direct is not None and spec.unit_matrix is not None:
        unit_rows = spec.unit_matrix.compute(lm, problem, direct, request.params, progress)
    base_matrix = matrix and unit_rows is None
    out = spec.fn(lm, problem, units, request.params, matrix=base_matrix, progress=progress)
    seconds = time.perf_counter() - started
    after = lm.cost.snapshot()
    cost = {k: after[k] - before[k] for k in after}
    template = problem.template_positions
    record = replace(
        RunRecord(
            masked=out.masked,
            completeness=out.completeness,
            hierarchy=out.hierarchy,
            search=out.search,
            interactions=out.interactions,
            kept=out.kept,
        ),
        provenance=Provenance(
            method_version=spec.version,
            family=str(spec.family),
            params=request.params.model_dump(mode="json"),
            model=lm.name,
            output_source=problem.output_source,
            **lm.describe(),
        ),
        cost=RunCost(
            forward_passes=cost["forward_sequences"],
            forward_calls=cost["forward_calls"],
            backward_passes=cost["backward_calls"],
            seconds=seconds,
        ),
    )
    if unit_rows is not None:
        record.heatmap = (
            f"computed at {request.granularity} units by forward-mode derivatives, "
            "one tangent a unit; not regroupable to other units"
        )
    if spec.family is not Family.GRADIENT:  # masked variants went through the batched scorer
        record.batching = lm.batching_support
    attribution = Attribution(
        prompt=problem.encoding.prompt,
        system_prompt=problem.encoding.system_prompt,
        output=problem.output,
        target_span=problem.target_span,
        target_tokens=problem.target_pieces(lm),
        method=spec.name,
        base_granularity=request.base_granularity,
        base_units=units,
        base_scores=[float(s) for s in out.scores],
        base_matrix=out.matrix if unit_rows is None else unit_rows,
        matrix_granularity=None if unit_rows is None else request.granularity,
        contrast=problem.contrast,
        contrast_tokens=(
            lm.token_pieces(problem.contrast_ids) if problem.contrast_ids is not None else None
        ),
        base_selected=out.selected,
        aggregation=spec.aggregation,
        signed=spec.signed,
        template_tokens=lm.token_pieces([problem.ids[p] for p in template]),
        template_scores=list(out.template_scores or []),
        record=record,
        pattern=request.pattern if not spec.regroupable else None,
        messages=recorded_messages(problem.encoding.messages),
    )
    if request.granularity != request.base_granularity:
        attribution = attribution.aggregate(request.granularity, request.pattern)
    if problem.contrast is not None:
        attribution.record.contrast = _contrast_report(lm, problem, attribution)
    if request.check:
        attribution.record.check = check_result(
            lm, problem, attribution, k=request.check_k, operator=request.check_operator
        )
    return attribution


def check_result(
    lm: LanguageModel,
    problem: Problem,
    attribution: Attribution,
    *,
    k: int | None = None,
    token: int | None = None,
    operator: str | None = None,
) -> FaithfulnessCheck:
    """The faithfulness check of a result at the units it shows (`check.py`): its top-k
    (a joint method's set first) against random k-sets, sufficiency and LDS. With
    `token`, one heatmap row against that output token's probability."""
    if token is not None:
        scores = check_row(attribution, token)
        ranking = sorted(range(len(scores)), key=lambda i: -scores[i])
    else:
        scores, ranking = attribution.scores, attribution.ranking("support")
    params = attribution.record.provenance.params
    return check_explanation(
        lm,
        problem,
        attribution.units,
        scores,
        ranking,
        granularity=str(attribution.granularity),
        k=k,
        operator=check_operator_for(params, operator),
        batch_size=CHECK_BATCH,
        full_log_prob=attribution.record.unmasked_log_prob(),
        token=token,
    )


def check_row(attribution: Attribution, token: int) -> list[float]:
    """Heatmap row `token` of a result, the scores a per-token check ranks; refused in one
    line when the result has no heatmap or no such row (callers may ask before queueing)."""
    matrix = attribution.matrix
    if matrix is None:
        raise InvalidParameterError(
            "This result has no heatmap rows to check; explain it with the heatmap on.",
            param="token",
        )
    if not 0 <= token < len(matrix):
        raise InvalidParameterError(
            f"token {token} is not a heatmap row (0..{len(matrix) - 1}).", param="token"
        )
    return matrix[token]


def check_operator_for(params: Mapping[str, Any], given: str | None) -> str:
    """How the check removes units: as asked, else as the method masked (its `masking`
    parameter), else the default; the estimate and the check use this one rule."""
    return given or str(params.get("masking", DEFAULT_OPERATOR))


def _contrast_report(
    lm: LanguageModel, problem: Problem, attribution: Attribution
) -> ContrastReport:
    """Both log-probabilities and their difference, with the full context and with the
    result's strongest units deleted (a joint method's set; else the top few by support)."""
    masked = attribution.selected or attribution.ranking("support")[: quantity.REPORT_TOP_UNITS]
    report = quantity.contrast_report(lm, problem, attribution.units, sorted(masked))
    if report.same_text:
        report = replace(report, note="The contrast equals the target, so every score is zero.")
    return report
