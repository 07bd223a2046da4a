"""One prompt's work: the unit an evaluation runs, the same in one process and on Ray.

`compute_prompt` makes the prompt's output y (or reuses the stored one), runs every
outstanding method and scores its top-k units. It touches no store: the
single-process run commits each piece through callbacks as it finishes, a Ray
worker returns the whole `PromptResult` and the driver commits it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..api import LanguageModel, Problem, attribute, build_problem
from ..errors import PromptXrayError
from .check_columns import check_fields, unchecked_fields
from .config import EvalConfig
from .metrics import FaithfulnessScorer
from .rows import PromptRecord
from .store import ResultStore


@dataclass
class PromptJob:
    """One prompt's outstanding work, with what the store already knows of it."""

    rec: PromptRecord
    methods: list[str]
    output_ids: list[int] | None = None  # y from an earlier run: never regenerated
    output_error: str | None = None  # an earlier run could not make y


@dataclass
class PromptResult:
    rec: PromptRecord
    model: str
    new_output: dict[str, Any] | None  # y made now: the fields of its `outputs` row
    error: str | None  # the prompt has no y (too long, empty output...): no rows
    methods: list[str] = field(default_factory=list)  # the methods that were asked for
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def prompt_job(store: ResultStore, rec: PromptRecord, model: str, cfg: EvalConfig) -> PromptJob:
    """The methods still missing for this prompt, and its stored y (or y's error)."""
    todo = [m for m in cfg.methods if not store.has_row(store.row_key(rec, m, model, cfg))]
    job = PromptJob(rec, todo)
    if todo:
        row = store.get_output(rec, model, cfg.max_new_tokens)
        if row is not None and row["error"]:
            job.output_error = row["error"]
        elif row is not None:
            job.output_ids = json.loads(row["output_ids"])
    return job


def compute_prompt(
    lm: LanguageModel,
    job: PromptJob,
    cfg: EvalConfig,
    on_output: Callable[[dict[str, Any]], None] | None = None,
    on_method: Callable[[str, dict[str, Any]], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> PromptResult:
    """Make y if needed, then run and score every outstanding method of one prompt.

    Touches no store: the single-process run commits through the callbacks as each
    piece finishes; a Ray worker returns the result and the driver commits it.
    """
    result = PromptResult(job.rec, lm.name, None, job.output_error, list(job.methods))
    if job.output_error is not None:
        return result
    try:
        problem, result.new_output = _problem(lm, job, cfg.max_new_tokens)
    except PromptXrayError as exc:
        result.new_output, result.error = {"error": str(exc)}, str(exc)
        if on_output is not None:
            on_output(result.new_output)
        return result
    if result.new_output is not None and on_output is not None:
        on_output(result.new_output)
    scorers: dict[tuple, FaithfulnessScorer] = {}
    for method in job.methods:
        if on_start is not None:
            on_start(method)
        fields = _evaluate_row(lm, problem, method, cfg, scorers)
        fields["output_source"] = problem.output_source
        result.rows.append((method, fields))
        if on_method is not None:
            on_method(method, fields)
    return result


def _problem(
    lm: LanguageModel, job: PromptJob, max_new_tokens: int
) -> tuple[Problem, dict[str, Any] | None]:
    """The prompt's problem, and the fields of its `outputs` row when y is new.

    y is the supplied target (rebuilt from its text each time: tokenising is cheap,
    and rebuilding it from ids would record it as generated), the stored
    generation (never regenerated), or generated now. The stop token is part of a
    generated y when the model ended early (as in XPrompt's code).
    """
    rec, started = job.rec, time.perf_counter()
    if rec.target is not None:
        problem = build_problem(lm, messages=rec.messages, target=rec.target)
        if job.output_ids is not None:
            return problem, None
    elif job.output_ids is not None:
        return build_problem(lm, messages=rec.messages, output_ids=job.output_ids), None
    else:
        ids = lm.generate(
            lm.encode_messages(rec.context).ids, max_new_tokens=max_new_tokens, keep_stop=True
        )
        problem = build_problem(lm, messages=rec.messages, output_ids=ids)
    return problem, {
        "output": problem.output,
        "output_ids": json.dumps(problem.output_ids),
        "seconds": time.perf_counter() - started,
        "output_source": problem.output_source,
    }


def _evaluate_row(
    lm: LanguageModel,
    problem: Problem,
    method: str,
    cfg: EvalConfig,
    scorers: dict[tuple, FaithfulnessScorer],
) -> dict[str, Any]:
    """Run one method and score its top-k units; a user-level error becomes the row.

    The result's faithfulness check runs at the evaluation's k, so its deletion removes
    the units the PR masks; a prompt of k units or fewer gets no check (it needs a unit
    left) and says so in the row's verdict.
    """
    try:
        n_units = len(problem.units(cfg.granularity))
        checked = cfg.k < n_units
        params = cfg.request(method).params
        # the method's masking, else the evaluation's: the PR masks with it, and so does the
        # check, so the check's deletion is the row's PR
        operator = str(getattr(params, "masking", cfg.masking))
        attribution = attribute(
            lm,
            problem,
            method,
            granularity=cfg.granularity,
            params=params,
            check=checked,
            check_k=cfg.k if checked else None,
            check_operator=operator,
        )
        cost = attribution.record.cost
        units = attribution.units
        signature = (operator, tuple(tuple(u.tokens) for u in units))
        if signature not in scorers:
            scorers[signature] = FaithfulnessScorer(
                lm,
                problem,
                units,
                operator=operator,
                max_new_tokens=cfg.max_new_tokens,
                use_sbert=cfg.use_sbert,
            )
        started = time.perf_counter()
        result = scorers[signature].score(attribution.ranking("support"), cfg.k)
        eval_seconds = time.perf_counter() - started
    except PromptXrayError as exc:
        return {"error": str(exc)}
    return {
        "error": None,
        "operator": operator,
        "n_units": len(units),
        **result.values(),
        "seconds": cost.seconds,
        "forward_passes": float(cost.forward_passes),
        "backward_passes": float(cost.backward_passes),
        "eval_seconds": eval_seconds,
        "masked_output": result.masked_output,
        "masked_units": json.dumps(result.masked_units, ensure_ascii=False),
        "details": json.dumps(result.details),
        **(check_fields(attribution.record.check) if checked else unchecked_fields(cfg.k, n_units)),
    }
