"""What the server does for each request, apart from HTTP: check it, build it, start it.

The handlers in `app.py` only parse the body and call one function here; every
check of a request (the method's parameters through `api.check_request`, spans,
unit indices) and every problem built for a job lives here, so the rules are
stated once. Model work is not done here: it is handed to the job queue as a
job body from `tasks.py`. Lookups that find nothing raise `NotFoundError` (404);
bad input raises a `PromptXrayError` (400, or 409 for a refused regroup).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .. import api
from ..api import FaithfulnessCheck, LanguageModel, Problem, Request
from ..attribution import Attribution
from ..errors import InvalidParameterError, RegroupRefusedError, SpanError
from . import schemas
from .checks import check_k_fits, checks_on
from .compare import score_changes, shared_scale, text_diffs
from .jobs import Job, JobQueue
from .store import HistoryStore
from .tasks import (
    RunPrompt,
    check_answer,
    check_job,
    explain_job,
    generate_job,
    mask_job,
    saved,
    supplied_job,
)
from .views import explanation_view, export_html, shown_check

# The page asks before starting an explanation predicted to take longer than this.
CONFIRM_SECONDS = 30.0

# What a compare side shows of a run: the fields of its schema, named once there.
RUN_FIELDS = tuple(schemas.RunRecord.model_fields)


class NotFoundError(LookupError):
    """A run, explanation or job id that is not (or no longer) there: HTTP 404."""


def check_span(output: str, span: tuple[int, int] | None) -> None:
    """Refuse a target that is only whitespace: it would explain a neighbouring token.

    Out-of-range and empty spans are left to `api.problem_for`, which says what is wrong.
    """
    if span is None:
        return
    start, end = span
    if 0 <= start < end <= len(output) and not output[start:end].strip():
        raise SpanError(
            f"The selected text (characters {start}-{end}) is only whitespace; "
            "select or click a word of the output to explain.",
            param="span",
        )


def pick_units(attr: Attribution, units: list[int] | None, top_k: int | None) -> list[int]:
    """The unit indices a mask request removes: the listed ones, or the top-k by support."""
    n_units = len(attr.units)
    if (units is None) == (top_k is None):
        raise InvalidParameterError(
            "Give either the units to remove or top_k, not both.",
            param="top_k" if top_k is not None else "units",
        )
    if top_k is not None:
        if top_k > n_units:
            raise InvalidParameterError(
                f"top_k is {top_k} but there are only {n_units} units.", param="top_k"
            )
        return attr.ranking("support")[:top_k]
    masked = sorted(set(units or []))
    if not masked:
        raise InvalidParameterError("Pick at least one unit to remove.", param="units")
    bad = [i for i in masked if not 0 <= i < n_units]
    if bad:
        raise InvalidParameterError(
            f"Unit index {bad[0]} is out of range: there are {n_units} units.", param="units"
        )
    return masked


def at_granularity(attr: Attribution, granularity: str | None) -> Attribution:
    """The stored result regrouped to `granularity` (no model call); itself when not asked."""
    if granularity and granularity != attr.granularity:
        return attr.aggregate(granularity)
    return attr


@dataclass
class Service:
    """The server's state (model, history, job queue) and what each endpoint does with it."""

    lm: LanguageModel
    store: HistoryStore
    jobs: JobQueue

    # ----- lookups --------------------------------------------------------------------
    def run(self, run_id: str) -> dict[str, Any]:
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFoundError(f"No run {run_id!r} in the history.")
        return run

    def explanation(self, explanation_id: str) -> dict[str, Any]:
        stored = self.store.get_explanation(explanation_id)
        if stored is None:
            raise NotFoundError(f"No explanation {explanation_id!r} in the history.")
        return stored

    def problem(
        self, run: dict[str, Any], span: tuple[int, int] | None, contrast: str | None = None
    ) -> Problem:
        """The run's prompt, output and target as one sequence (no regeneration).

        A supplied response is the given target again (so results say it was not
        generated); a generated one reuses the run's output ids.
        """
        check_span(run["output"], span)
        if run.get("messages"):
            source: dict[str, Any] = {"messages": run["messages"]}
        else:
            source = {"prompt": run["prompt"], "system_prompt": run["system_prompt"]}
        if run.get("output_source") == "given":
            source["target"] = run["output"]
        else:
            source["output_ids"] = run["output_ids"]
        return api.problem_for(self.lm, **source, span=span, contrast=contrast)

    def checked_explain(
        self, body: schemas.ExplainRequest
    ) -> tuple[dict[str, Any], Request, Problem]:
        """The run an explain (or estimate) request names, its checked request and problem.

        Everything that can be wrong is refused here, before any job: the run, the
        method and its parameters, the span, the contrast, the unit count.
        """
        run = self.run(body.run_id)
        request = api.check_request(
            body.method,
            body.granularity,
            None,
            body.method_params(),
            check=body.check,
            check_k=body.check_k,
        )
        span = tuple(body.span) if body.span is not None else None
        problem = self.problem(run, span, body.contrast)
        request.units(problem)  # 400 now (e.g. k larger than the unit count), not in the job
        if request.check:
            units = problem.units(request.granularity, request.pattern)
            check_k_fits(problem, units, request.check_k)
        return run, request, problem

    def stored_problem(self, stored: dict[str, Any]) -> Problem:
        """The problem a stored explanation was computed on: its run, span and contrast."""
        settings = stored["settings"]
        span = tuple(settings["span"]) if settings.get("span") else None
        return self.problem(self.run(stored["run_id"]), span, settings.get("contrast"))

    # ----- jobs -----------------------------------------------------------------------
    def start_generate(self, body: schemas.GenerateRequest) -> Job:
        """Queue greedy generation, or record a supplied response (no generation).

        The prompt or conversation is checked and encoded by the library now
        (`api.prompt_for`), so a bad one or one longer than the context is a 4xx at once.
        """
        source = {
            "prompt": body.prompt,
            "system_prompt": body.system_prompt,
            "messages": body.messages,
        }
        encoding, response = api.prompt_for(self.lm, **source, target=body.response)
        prompt = RunPrompt(
            prompt=encoding.prompt,
            system_prompt=encoding.system_prompt,
            messages=api.recorded_messages(encoding.messages),
            max_new_tokens=body.max_new_tokens,
        )
        if response is None:
            return self.jobs.submit(
                "generate", generate_job(self.lm, self.store, prompt, encoding.ids)
            )
        problem = api.problem_for(self.lm, **source, target=body.response)
        # Regenerating after a mask may write as long as the supplied response.
        prompt = replace(prompt, max_new_tokens=max(body.max_new_tokens, len(problem.output_ids)))
        return self.jobs.submit("generate", supplied_job(self.lm, self.store, prompt, problem))

    def start_explain(self, body: schemas.ExplainRequest) -> Job:
        """Check method, parameters, granularity, span and contrast; queue the attribution."""
        run, request, problem = self.checked_explain(body)
        span = body.span
        settings = {
            "method": body.method,
            "granularity": body.granularity,
            "span": list(span) if span else None,
            "matrix": body.matrix,
            "params": request.params.model_dump(mode="json"),
            "contrast": body.contrast,
            "check": body.check,
            "check_k": body.check_k,
        }
        fn = explain_job(self.lm, self.store, run["id"], problem, settings, request)
        return self.jobs.submit("explain", fn)

    def estimate(self, body: schemas.ExplainRequest) -> dict[str, Any]:
        """What explaining `body` would cost (passes, seconds), checked like `start_explain`.

        The problem is the one the job would run (conversation and contrast included).
        Measuring takes one forward, so it needs the model; while a job holds it the
        answer says no estimate is available instead of waiting for the job to end.
        """
        _, request, problem = self.checked_explain(body)
        if not self.lm.lock.acquire(blocking=False):
            return {
                "available": False,
                "line": "no estimate while the model is busy",
                "confirm": False,
            }
        try:
            predicted = api.estimate(self.lm, problem, request, matrix=body.matrix)
            alone = predicted
            if request.check:  # the same prediction without the check: its share
                alone = api.estimate(
                    self.lm,
                    problem,
                    replace(request, check=False),
                    matrix=body.matrix,
                    per_token=predicted.seconds_per_token,
                )
        finally:
            self.lm.lock.release()
        method = alone.cost.forward_sequences
        return {
            "available": True,
            **predicted.as_dict(),
            "line": predicted.line(method),
            "method_forward": method,
            "check_forward": predicted.cost.forward_sequences - method,
            "confirm": predicted.seconds > CONFIRM_SECONDS,
        }

    def start_mask(self, body: schemas.MaskRequest) -> Job:
        """Check the units to remove against the stored result; queue mask-and-regenerate."""
        stored = self.explanation(body.explanation_id)
        attr = at_granularity(stored["attribution"], body.granularity)
        masked = pick_units(attr, body.units, body.top_k)
        run = self.run(stored["run_id"])
        problem = self.problem(run, attr.target_span)
        fn = mask_job(
            self.lm, self.store, run, body.explanation_id, attr, problem, masked, body.operator
        )
        return self.jobs.submit("mask", fn)

    def start_check(self, body: schemas.CheckRequest) -> Job:
        """Check a stored result at `granularity` (or its heatmap row `token`): everything
        that can be wrong is refused now; a check known already comes back as a finished
        job, anything else is computed by a job (the model is the worker's alone)."""
        stored = self.explanation(body.explanation_id)
        attr = at_granularity(stored["attribution"], body.granularity)
        settings = stored["settings"]
        k = body.k if body.k is not None else settings.get("check_k")
        if body.token is not None:
            api.check_row(attr, body.token)
        problem = self.stored_problem(stored)
        check_k_fits(problem, attr.units, k)
        known = self.store.get_check(body.explanation_id, attr.granularity, body.token, k)
        if known is None and body.token is None and k == settings.get("check_k"):
            known = shown_check(attr)
        if known is not None:
            return self.jobs.finished(
                "check", check_answer(body.explanation_id, attr.granularity, known)
            )
        fn = check_job(self.lm, self.store, body.explanation_id, attr, problem, k, body.token)
        return self.jobs.submit("check", fn)

    # ----- stored results (no model calls) ----------------------------------------------
    def retarget(self, body: schemas.RetargetRequest) -> dict[str, Any]:
        """Another span of a stored explanation's output from the ablations it kept
        (`api.retarget`: no model, no forward pass), stored as a new explanation of the
        same run and answered as an explanation job answers. Its check is not computed
        here (that needs the model): `check_due` asks the page for it, as for a regroup."""
        stored = self.explanation(body.explanation_id)
        run = self.run(stored["run_id"])
        span = (body.span[0], body.span[1])
        check_span(run["output"], span)
        attr = api.retarget(stored["attribution"], span)
        settings = {
            **stored["settings"],
            "span": list(span),  # as asked, like an explanation (the problem snaps it again)
            "retargeted_from": body.explanation_id,
        }
        explanation_id, status = saved(
            lambda: self.store.add_explanation(run["id"], settings, attr), "explanation"
        )
        view = explanation_view(
            explanation_id, run["id"], attr, settings, check_due=bool(settings.get("check", True))
        )
        return {**view, "retargeted_from": body.explanation_id, **status}

    def later_check(
        self, explanation_id: str, attr: Attribution, settings: dict[str, Any]
    ) -> FaithfulnessCheck | None:
        """A check of the whole target computed after the explanation at `attr`'s units."""
        return self.store.get_check(explanation_id, attr.granularity, None, settings.get("check_k"))

    def view(
        self, explanation_id: str, granularity: str | None, gamma: float, rows: str = "token"
    ) -> dict:
        """A stored explanation at `granularity`, heatmap rows grouped by `rows`, at `gamma`.

        Its check is the one it carries when it is of these units, else one computed
        later at them (POST /api/check; `check_due` asks the page to start it): a GET
        never waits for the model, which may be busy with a long job.
        """
        stored = self.explanation(explanation_id)
        attr = at_granularity(stored["attribution"], granularity)
        settings = stored["settings"]
        later = None if shown_check(attr) else self.later_check(explanation_id, attr, settings)
        return explanation_view(
            explanation_id,
            stored["run_id"],
            attr,
            settings,
            gamma=gamma,
            rows=rows,
            check=later,
            check_due=checks_on(stored),
        )

    def export(self, explanation_id: str, fmt: str, granularity: str | None) -> str:
        """The explanation as Attribution JSON or a standalone HTML page, with its check
        at these units: its own, or one computed later at them (a regrouped result
        carries none), never one of other units."""
        stored = self.explanation(explanation_id)
        attr = at_granularity(stored["attribution"], granularity)
        check = shown_check(attr, self.later_check(explanation_id, attr, stored["settings"]))
        if check is not attr.record.check:  # never one of other units, relabelled
            attr = replace(attr, record=replace(attr.record, check=check))
        return attr.to_json(indent=2) if fmt == "json" else export_html(attr)

    def run_detail(self, run_id: str) -> dict[str, Any]:
        """One run with every explanation (settings only) and every mask experiment."""
        run = self.run(run_id)
        run.pop("output_ids")
        return {
            **run,
            "explanations": self.store.list_explanations(run_id),
            "edits": self.store.list_edits(run_id),
        }

    # ----- compare ----------------------------------------------------------------------
    def side(self, ref: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A compare reference: "RUN", "RUN:EXPLANATION" or an explanation id alone."""
        run_id, _, explanation_id = ref.strip().partition(":")
        if not explanation_id and self.store.get_run(run_id) is None:
            explanation_id = run_id
            run_id = self.explanation(explanation_id)["run_id"]
        run = self.run(run_id)
        if not explanation_id:
            return run, None
        stored = self.explanation(explanation_id)
        if stored["run_id"] != run["id"]:
            raise InvalidParameterError(
                f"Explanation {explanation_id!r} belongs to run {stored['run_id']!r}, "
                f"not to run {run_id!r}."
            )
        return run, stored

    def compare(self, a: str, b: str, granularity: str | None, gamma: float) -> dict:
        """Two runs (or explanations) side by side: diffs, one colour scale, score changes."""
        (run_a, exp_a), (run_b, exp_b) = self.side(a), self.side(b)
        result: dict[str, Any] = {
            # `created`: the explanation's time where there is one (the compare menu's), else
            # the run's, so a side's title and its menu entry show the same time.
            "a": {
                "ref": a,
                "run": {k: run_a[k] for k in RUN_FIELDS},
                "view": None,
                "created": (exp_a or run_a)["created"],
            },
            "b": {
                "ref": b,
                "run": {k: run_b[k] for k in RUN_FIELDS},
                "view": None,
                "created": (exp_b or run_b)["created"],
            },
            "diff": text_diffs(run_a, run_b),
            "shared_scale": False,
            "palette": None,
            "changes": [],
            "note": None,
        }
        if exp_a is None or exp_b is None:
            if exp_a is not None or exp_b is not None:
                result["note"] = "Only one side has an explanation: pick one for each run."
            return result
        attr_a, attr_b, note = aligned(exp_a["attribution"], exp_b["attribution"], granularity)
        scale = shared_scale(attr_a, attr_b, gamma)
        if scale is None:
            note = "One method is signed and the other is not: each side has its own scale."
        for key, stored, attr in (("a", exp_a, attr_a), ("b", exp_b, attr_b)):
            result[key]["view"] = explanation_view(
                stored["id"], stored["run_id"], attr, stored["settings"], gamma=gamma, scale=scale
            )
        result["shared_scale"] = scale is not None
        result["palette"] = result["a"]["view"]["palette"] if scale is not None else None
        result["changes"] = score_changes(attr_a, attr_b)
        result["note"] = note
        return result

    def compare_choices(self) -> list[dict[str, Any]]:
        """What the compare view offers: every explanation, newest first, with a label."""
        choices = []
        for item in self.store.list_explanation_choices():
            settings = item["settings"]
            prompt = " ".join(item["prompt"].split())
            short = prompt if len(prompt) <= 50 else prompt[:49] + "…"
            label = f"{short} · {settings['method']} · {settings['granularity']}"
            if settings.get("span"):
                label += f" · chars {settings['span'][0]}-{settings['span'][1]}"
            ref = f"{item['run_id']}:{item['id']}"
            choices.append({"ref": ref, "label": label, "created": item["created"]})
        return choices


def aligned(
    a: Attribution, b: Attribution, granularity: str | None
) -> tuple[Attribution, Attribution, str | None]:
    """Both results at one granularity where their rules allow it (no model call).

    Asked for one: both go there (409 if a rule refuses). Otherwise the finer one
    is regrouped to the coarser one's granularity; if neither can be, they stay as
    they are, and the note says why fewer units pair up.
    """
    if granularity:
        return at_granularity(a, granularity), at_granularity(b, granularity), None
    if a.granularity == b.granularity:
        return a, b, None
    for target in (a.granularity, b.granularity):
        try:
            return at_granularity(a, target), at_granularity(b, target), None
        except RegroupRefusedError:
            continue
    note = (
        f"The two results are at different granularities ({a.granularity}, "
        f"{b.granularity}) and neither can be regrouped: only equal units pair up."
    )
    return a, b, note
