"""The work the model does for the page: generate, explain, mask and regenerate.

Each function here checks nothing about the request (the endpoint already did,
so bad input fails fast with a 4xx) and returns a job body that runs on the one
worker thread. Results are saved to the history before the job reports done, so
a page that reloads mid-job still finds the run.
"""

from __future__ import annotations

from typing import Any

from ..api import Request
from ..api import run as run_request
from ..attribution import Attribution
from ..model import LanguageModel
from ..targets import Problem
from .compare import word_diff
from .jobs import JobContext, JobFn
from .store import HistoryStore
from .views import explanation_view


def generate_job(
    lm: LanguageModel,
    store: HistoryStore,
    prompt: str,
    system_prompt: str | None,
    prompt_ids: list[int],
    max_new_tokens: int,
) -> JobFn:
    """Greedy generation that streams its partial text into the job as it goes."""

    def work(ctx: JobContext) -> dict[str, Any]:
        produced: list[int] = []
        room = max(1, min(max_new_tokens, lm.max_context - len(prompt_ids)))
        ctx.progress(0, room)

        def on_token(token: int) -> None:
            produced.append(token)
            ctx.partial(lm.decode(produced))
            ctx.progress(min(len(produced), room), room)

        output_ids = lm.generate(prompt_ids, max_new_tokens=room, on_token=on_token)
        output = lm.decode(output_ids)
        run_id = store.add_run(
            model=lm.name,
            prompt=prompt,
            system_prompt=system_prompt,
            max_new_tokens=max_new_tokens,
            output=output,
            output_ids=output_ids,
        )
        return {"run_id": run_id, "output": output, "n_tokens": len(output_ids)}

    return work


def explain_job(
    lm: LanguageModel,
    store: HistoryStore,
    run_id: str,
    problem: Problem,
    settings: dict[str, Any],
    request: Request,
) -> JobFn:
    """Run one checked request on an already-built problem (no regeneration) and save it."""

    def work(ctx: JobContext) -> dict[str, Any]:
        attr = run_request(lm, problem, request, matrix=settings["matrix"], progress=ctx.progress)
        explanation_id = store.add_explanation(run_id, settings, attr)
        return explanation_view(explanation_id, run_id, attr, settings)

    return work


def mask_job(
    lm: LanguageModel,
    store: HistoryStore,
    run: dict[str, Any],
    explanation_id: str,
    view: Attribution,
    problem: Problem,
    masked: list[int],
    operator: str,
) -> JobFn:
    """Remove units, regenerate from the same point, and measure how the target moved.

    PR and KL are taken on the explained target tokens with the *original*
    continuation teacher-forced, so they say how much less likely the old answer
    became; the regenerated text shows what the model says instead.
    """

    def work(ctx: JobContext) -> dict[str, Any]:
        from ..evaluation.metrics import kl_divergence, probability_ratio
        from ..masking import MaskedContext, mask_context, masked_prompt_text

        units = view.units
        room = max(1, run["max_new_tokens"] - problem.target_token_range[0])
        steps = room + 2  # every generated token, then PR, then KL
        ctx.progress(0, steps)
        context = mask_context(lm, problem, units, masked, operator)
        original = MaskedContext(ids=list(problem.context_ids), operator=operator)
        produced: list[int] = []

        def on_token(token: int) -> None:
            produced.append(token)
            ctx.partial(lm.decode(produced))
            ctx.progress(min(len(produced), room), steps)

        new_ids = lm.generate_from(context, max_new_tokens=room, on_token=on_token)
        ctx.progress(room, steps)
        target = problem.target_ids
        logprobs = lm.score_variants([context, original], target, reference=original)
        pr = probability_ratio(logprobs[0], logprobs[1])
        ctx.progress(room + 1, steps)
        kl = kl_divergence(
            lm.target_log_distributions(context, target),
            lm.target_log_distributions(original, target),
        )
        start = problem.target_span[0]
        before, after = problem.output[start:], lm.decode(new_ids)
        result = {
            "explanation_id": explanation_id,
            "granularity": view.granularity,
            "operator": operator,
            "masked": sorted(masked),
            "masked_units": [
                {"index": i, "text": units[i].text, "role": units[i].role} for i in sorted(masked)
            ],
            "masked_prompt": masked_prompt_text(problem, units, masked),
            "prefix": problem.output[:start],
            "original": before,
            "regenerated": after,
            "diff": word_diff(before, after),
            "target": problem.output[start : problem.target_span[1]],
            "pr": pr,
            "kl": kl,
        }
        result["edit_id"] = store.add_edit(run["id"], explanation_id, result)
        ctx.progress(steps, steps)
        return result

    return work
