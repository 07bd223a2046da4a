"""The one pipeline: `explain()` for notebooks and the CLI, `attribute()` for a built problem.

The CLI, the web server and the evaluation harness call these functions, so there
is exactly one place where a request is validated (method, granularity, the
method's declared parameters), where the units a method works on are chosen, and
where a result and its metadata are put together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .ablation import Ablation, MarkedText, Reference, ablate, reference
from .attribution import Attribution
from .check import effective_k, why_not
from .conversation import Conversation, conversation_from, recorded_messages, require_one_source
from .distributed import RayOptions
from .errors import EmptyTargetError, InvalidParameterError
from .methods import REGISTRY as METHODS
from .methods.base import MethodParams, ProgressFn
from .methods.context_cite import retarget as _retarget
from .methods.costs import Estimate
from .model import (
    DEFAULT_MODEL,
    DEVICE_CHOICES,
    DTYPE_CHOICES,
    LanguageModel,
    PromptEncoding,
    Span,
    load_model,
    provision_default_model,
    resolve_placement,
)
from .pipeline import Request, check_request, check_result, check_row, estimate, run
from .record import FaithfulnessCheck
from .roles import turn_label
from .segments import GRANULARITIES, Unit, check_granularity, segment
from .targets import Problem, build_problem, parse_span

# What the callers above (CLI, server, evaluation, studies) need from the rooms below, in one
# place: they import these names from here, never from `model/`, `methods/` or `targets`.
__all__ = [
    "DEFAULT_MODEL",
    "DEVICE_CHOICES",
    "DTYPE_CHOICES",
    "GRANULARITIES",
    "METHODS",
    "Ablation",
    "Attribution",
    "Estimate",
    "FaithfulnessCheck",
    "LanguageModel",
    "MarkedText",
    "Problem",
    "PromptEncoding",
    "Reference",
    "RayOptions",
    "Request",
    "Span",
    "Unit",
    "ablate",
    "as_model",
    "attribute",
    "build_problem",
    "check_result",
    "check_row",
    "check_granularity",
    "check_request",
    "conversation_from",
    "effective_k",
    "estimate",
    "explain",
    "load_model",
    "parse_span",
    "problem_for",
    "prompt_for",
    "provision_default_model",
    "recorded_messages",
    "reference",
    "require_one_source",
    "resolve_placement",
    "retarget",
    "run",
    "segment",
    "turn_label",
    "why_not",
]

# A model, a name to load, or a function that loads one (called only once the
# request has been checked, so bad input never waits for a model to load).
ModelLike = LanguageModel | str | Callable[[], LanguageModel] | None


def as_model(
    model: ModelLike,
    progress: Callable[[str], None] | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> LanguageModel:
    """The model to run: as given, from its loader, or loaded by name on `device`/`dtype`.

    A device or dtype for a model that is already loaded (or loads itself) would be
    silently ignored, so it is refused instead.
    """
    if not isinstance(model, str | None) and (device is not None or dtype is not None):
        raise InvalidParameterError(
            "device and dtype apply when promptxray loads the model by name; this model is "
            "loaded already (use model.to(...) or load_model(name, device=..., dtype=...)).",
            param="device" if device is not None else "dtype",
        )
    if isinstance(model, LanguageModel):
        return model
    if callable(model):
        return model()
    return load_model(model, device=device, dtype=dtype, progress=progress)


def explain(
    prompt: str | None = None,
    *,
    messages: Any = None,
    model: ModelLike = None,
    method: str = "grad_norm",
    target: str | None = None,
    contrast: str | None = None,
    span: Span | None = None,
    granularity: str = "word",
    pattern: str | None = None,
    system_prompt: str | None = None,
    max_new_tokens: int = 64,
    output_ids: list[int] | None = None,
    matrix: bool = False,
    progress: ProgressFn | None = None,
    on_token: Callable[[int], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    params: Mapping[str, Any] | None = None,
    device: str | None = None,
    dtype: str | None = None,
    before_run: Callable[[LanguageModel, Problem, Request], None] | None = None,
    check: bool = True,
    check_k: int | None = None,
    **more_params: Any,
) -> Attribution:
    """Score every source unit of `prompt` by its influence on the target.

    The prompt is `prompt` (with an optional `system_prompt`) or `messages`, a
    conversation `[{"role": "system" | "user" | "assistant", "content": ...}, ...]`
    whose every turn is a source; its final assistant message, if it has one, is
    the target (as if given as `target`). The target is the model's own greedy
    output (default), `target` (a text you supply) or `span` (a character range of
    the output). `contrast` asks "why the target and not this text?": both are
    teacher-forced from the same context and every method attributes
    log p(target) - log p(contrast). The method's parameters come as `params={...}` or as keywords
    (`k=3`); a parameter the method does not declare is an error, never silently
    ignored. Token-level methods compute on tokens and regroup into `granularity`
    by their rule; masking methods mask whole units of that granularity.
    `on_stage` hears "generating"/"explaining".
    `device` and `dtype` (auto, cpu, cuda, cuda:N, mps; auto, float32, bfloat16,
    float16) say where a model named by `model` loads. `before_run` hears the model,
    the built problem and the checked request just before the method runs (the CLI
    prints `estimate()` there). The result carries a faithfulness check (`check=False`
    leaves it out; `check_k` is the number of top units it removes, default 3).
    """
    request = check_request(
        method,
        granularity,
        pattern,
        {**(params or {}), **more_params},
        check=check,
        check_k=check_k,
    )
    conversation = _checked_texts(prompt, system_prompt, messages, target, contrast, max_new_tokens)
    given = conversation.target(target) is not None
    lm = as_model(model, device=device, dtype=dtype)
    if on_stage:
        on_stage("generating" if not given and output_ids is None else "encoding")
    problem = problem_for(
        lm,
        prompt,
        messages=messages,
        system_prompt=system_prompt,
        target=target,
        contrast=contrast,
        span=span,
        output_ids=output_ids,
        max_new_tokens=max_new_tokens,
        on_token=on_token,
    )
    if before_run:
        before_run(lm, problem, request)
    if on_stage:
        on_stage("explaining")
    return run(lm, problem, request, matrix=matrix, progress=progress)


def _checked_texts(
    prompt: str | None,
    system_prompt: str | None,
    messages: Any,
    target: str | None,
    contrast: str | None = None,
    max_new_tokens: int = 64,
) -> Conversation:
    """The request's conversation, checked with its texts before any model is needed."""
    conversation = conversation_from(prompt, system_prompt, messages)
    if target is not None and not target:
        raise EmptyTargetError(
            "The target text is empty: give the text to explain.", param="target"
        )
    if contrast is not None and not contrast:
        raise EmptyTargetError(
            "The contrast text is empty: give the text to compare with.", param="contrast"
        )
    if max_new_tokens < 1:
        raise InvalidParameterError("max_new_tokens must be at least 1.", param="max_new_tokens")
    return conversation


def problem_for(
    lm: LanguageModel,
    prompt: str | None = None,
    *,
    messages: Any = None,
    system_prompt: str | None = None,
    target: str | None = None,
    contrast: str | None = None,
    span: Span | None = None,
    output_ids: list[int] | None = None,
    max_new_tokens: int = 64,
    on_token: Callable[[int], None] | None = None,
) -> Problem:
    """The problem `explain()` runs on, checked as it checks it: a prompt (+ system prompt)
    or messages, the target (generated, reused from `output_ids`, given, or a `span` of
    the output) and an optional contrast. For callers that keep their own model and runs
    (the server rebuilds a stored run's problem with this, never generating again)."""
    _checked_texts(prompt, system_prompt, messages, target, contrast, max_new_tokens)
    return build_problem(
        lm,
        prompt,
        messages=messages,
        system_prompt=system_prompt,
        target=target,
        contrast=contrast,
        span=span,
        output_ids=output_ids,
        max_new_tokens=max_new_tokens,
        on_token=on_token,
    )


def prompt_for(
    lm: LanguageModel,
    prompt: str | None = None,
    *,
    messages: Any = None,
    system_prompt: str | None = None,
    target: str | None = None,
) -> tuple[PromptEncoding, str | None]:
    """The checked prompt as the model reads it, and the given target (`target`, or a
    conversation's final assistant message; None: the output is to be generated).

    What a caller needs to generate on its own terms (the server streams generation in
    a job): every check `problem_for` makes of the prompt is made here, before that.
    """
    conversation = _checked_texts(prompt, system_prompt, messages, target)
    given = conversation.target(target)
    return lm.encode_messages(conversation.context), given


def attribute(
    lm: LanguageModel,
    problem: Problem,
    method: str,
    granularity: str = "word",
    pattern: str | None = None,
    matrix: bool = False,
    progress: ProgressFn | None = None,
    params: Mapping[str, Any] | MethodParams | None = None,
    check: bool = True,
    check_k: int | None = None,
    check_operator: str | None = None,
    **more_params: Any,
) -> Attribution:
    """Run one method on an already-built problem (reuses its output: no generation);
    the result carries its faithfulness check unless `check=False`."""
    if isinstance(params, MethodParams) and not more_params:
        given: Mapping[str, Any] | MethodParams = params
    else:
        base = params.model_dump() if isinstance(params, MethodParams) else dict(params or {})
        given = {**base, **more_params}
    request = check_request(
        method,
        granularity,
        pattern,
        given,
        check=check,
        check_k=check_k,
        check_operator=check_operator,
    )
    return run(lm, problem, request, matrix=matrix, progress=progress)


def retarget(result: Attribution | str | Path, span: Span) -> Attribution:
    """Explain another span of a result's output from the ablations it kept (context_cite):
    the same units, new scores and LDS, no model and no forward pass.

    `result` is an `Attribution` or the path of one saved as JSON (`--json`); `span` is
    (start, end) in characters of the output, as `explain(span=)` takes it. A result
    without kept ablations, a contrast result, or a span outside the target its ablations
    scored is refused in one line. The result carries no check (`check_result` adds one).
    """
    if not isinstance(result, Attribution):
        result = _read_result(Path(result))
    return _retarget(result, span)


def _read_result(path: Path) -> Attribution:
    """A result saved as JSON, or one line saying why it cannot be read."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidParameterError(
            f"Cannot read the result {str(path)!r}: {exc.strerror or exc}.", param="result"
        ) from None
    try:
        return Attribution.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidParameterError(
            f"{str(path)!r} is not a saved promptxray result (JSON from --json): {exc}.",
            param="result",
        ) from None
