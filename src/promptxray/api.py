"""The notebook API: `explain()` runs the whole pipeline and returns an `Attribution`.

The CLI, the web server and the evaluation harness call this same function, so
there is exactly one way salience gets computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .attribution import Attribution
from .errors import InvalidParameterError
from .methods import get_method
from .methods.base import ProgressFn
from .model import LanguageModel, Span, load_model
from .segments import check_granularity
from .targets import Problem, build_problem

ModelLike = LanguageModel | str | None


def as_model(model: ModelLike, progress: Callable[[str], None] | None = None) -> LanguageModel:
    return model if isinstance(model, LanguageModel) else load_model(model, progress=progress)


def explain(
    prompt: str,
    *,
    model: ModelLike = None,
    method: str = "grad_norm",
    target: str | None = None,
    span: Span | None = None,
    granularity: str = "word",
    pattern: str | None = None,
    system_prompt: str | None = None,
    max_new_tokens: int = 64,
    output_ids: list[int] | None = None,
    matrix: bool = False,
    progress: ProgressFn | None = None,
    **params: Any,
) -> Attribution:
    """Score every source unit of `prompt` by its influence on the target.

    The target is the model's own greedy output (default), `target` (a text you
    supply) or `span` (a character range of the output). Token-level methods are
    computed on tokens and summed into `granularity`; perturbation methods mask
    whole units of that granularity.
    """
    get_method(method)  # fail on a bad name before loading a model or generating
    check_granularity(granularity, pattern)
    if max_new_tokens < 1:
        raise InvalidParameterError("max_new_tokens must be at least 1.")
    lm = as_model(model)
    problem = build_problem(
        lm,
        prompt,
        system_prompt=system_prompt,
        target=target,
        span=span,
        output_ids=output_ids,
        max_new_tokens=max_new_tokens,
    )
    return attribute(lm, problem, method, granularity, pattern, matrix, progress, **params)


def attribute(
    lm: LanguageModel,
    problem: Problem,
    method: str,
    granularity: str = "word",
    pattern: str | None = None,
    matrix: bool = False,
    progress: ProgressFn | None = None,
    **params: Any,
) -> Attribution:
    """Run one method on an already-built problem (reuses its output: no generation)."""
    spec = get_method(method)
    check_granularity(granularity, pattern)
    base_granularity = "token" if spec.token_level or granularity == "regex" else granularity
    units = problem.units(base_granularity)
    before = lm.cost.snapshot()
    started = time.perf_counter()
    out = spec.fn(lm, problem, units, matrix=matrix, progress=progress, **params)
    seconds = time.perf_counter() - started
    after = lm.cost.snapshot()
    cost = {k: after[k] - before[k] for k in after}
    template = problem.template_positions
    metadata = {
        "method": method,
        "family": spec.family,
        "params": {k: v for k, v in params.items() if _jsonable(v)},
        "model": lm.name,
        "seconds": seconds,
        "forward_passes": cost["forward_sequences"],
        "forward_calls": cost["forward_calls"],
        "backward_passes": cost["backward_calls"],
        **out.extra,
    }
    attribution = Attribution(
        prompt=problem.encoding.prompt,
        system_prompt=problem.encoding.system_prompt,
        output=problem.output,
        target_span=problem.target_span,
        target_tokens=problem.target_pieces(lm),
        method=method,
        base_granularity=base_granularity,
        base_units=units,
        base_scores=[float(s) for s in out.scores],
        base_matrix=out.matrix,
        base_selected=out.selected,
        template_tokens=lm.token_pieces([problem.ids[p] for p in template]),
        template_scores=list(out.template_scores or []),
        metadata=metadata,
    )
    if granularity != base_granularity:
        attribution = attribution.aggregate(granularity, pattern)
    return attribution


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None) | list | tuple)
