"""The work the model does for the page: generate, explain, mask and regenerate.

Each function here checks nothing about the request (the service already did,
so bad input fails fast with a 4xx) and returns a job body that runs on the one
worker thread. Results are saved to the history before the job reports done, so
a page that reloads mid-job, or was closed, still finds them there. When the
history cannot be written the result is still returned, with `saved: False` and
a `warning` the page shows; the record stays usable until the server stops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..api import Request
from ..api import run as run_request
from ..attribution import Attribution
from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem
from .compare import word_diff
from .jobs import JobContext, JobFn
from .store import HistoryStore, HistoryWriteError
from .views import explanation_view


def saved(write: Callable[[], str], what: str) -> tuple[str, dict[str, Any]]:
    """Run a history write; the record id and the fields that tell the page how it went."""
    try:
        return write(), {"saved": True, "warning": None}
    except HistoryWriteError as exc:
        return exc.record_id, {"saved": False, "warning": exc.warning(what)}


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
        run_id, status = saved(
            lambda: store.add_run(
                model=lm.name,
                prompt=prompt,
                system_prompt=system_prompt,
                max_new_tokens=max_new_tokens,
                output=output,
                output_ids=output_ids,
            ),
            "run",
        )
        return {"run_id": run_id, "output": output, "n_tokens": len(output_ids), **status}

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
        explanation_id, status = saved(
            lambda: store.add_explanation(run_id, settings, attr), "explanation"
        )
        return {**explanation_view(explanation_id, run_id, attr, settings), **status}

    return work


def removal_pieces(text: str, units: list[Unit], role: str, masked: set[int]) -> list[dict]:
    """`text` cut into pieces, each marked `removed` when a masked unit of `role` covers it.

    The mask card draws removed pieces struck through, so every part of the
    context the model lost is visible: system prompt, prompt and earlier output.
    """
    cuts = sorted(
        units[i].span for i in masked if units[i].role == role and units[i].span is not None
    )
    pieces: list[dict[str, Any]] = []
    cursor = 0
    for start, end in cuts:
        start = max(start, cursor)
        if start > cursor:
            pieces.append({"text": text[cursor:start], "removed": False})
        if end > start:
            pieces.append({"text": text[start:end], "removed": True})
        cursor = max(cursor, end)
    if cursor < len(text):
        pieces.append({"text": text[cursor:], "removed": False})
    return pieces


def kept_text(pieces: list[dict[str, Any]]) -> str:
    """What is left of a text once its removed pieces are cut (whitespace tidied)."""
    kept = "".join(p["text"] for p in pieces if not p["removed"])
    lines = [" ".join(line.split()) for line in kept.split("\n")]
    return "\n".join(lines).strip()


def masked_context_view(problem: Problem, units: list[Unit], masked: list[int]) -> dict:
    """The context as the regeneration saw it: each role's text with removals marked."""
    chosen = set(masked)
    system = problem.encoding.system_prompt or ""
    start = problem.target_span[0]
    system_pieces = removal_pieces(system, units, "system", chosen)
    return {
        "system_pieces": system_pieces,
        "prompt_pieces": removal_pieces(problem.encoding.prompt, units, "user", chosen),
        "prefix_pieces": removal_pieces(problem.output[:start], units, "output", chosen),
        "masked_system": kept_text(system_pieces) if system else None,
    }


def pr_and_kl(lm: LanguageModel, masked_ctx: Any, original_ctx: Any, target: list[int]) -> tuple:
    """PR and KL of the target under the masked context, from two forward passes.

    Both need the teacher-forced next-token distributions of the masked and the
    original context; the target's own log-probabilities (for PR) are read out of
    those same distributions instead of being scored again.
    """
    from ..evaluation.metrics import kl_divergence, probability_ratio

    masked_dist = lm.target_log_distributions(masked_ctx, target)
    original_dist = lm.target_log_distributions(original_ctx, target)
    index = torch.tensor(target, dtype=torch.long)[:, None]
    pr = probability_ratio(masked_dist.gather(1, index)[:, 0], original_dist.gather(1, index)[:, 0])
    return pr, kl_divergence(masked_dist, original_dist)


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
        from ..masking import MaskedContext, mask_context, masked_prompt_text

        units = view.units
        room = max(1, run["max_new_tokens"] - problem.target_token_range[0])
        steps = room + 1  # every generated token, then PR and KL together
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
        pr, kl = pr_and_kl(lm, context, original, problem.target_ids)
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
            **masked_context_view(problem, units, masked),
            "prefix": problem.output[:start],
            "original": before,
            "regenerated": after,
            "diff": word_diff(before, after),
            "target": problem.output[start : problem.target_span[1]],
            "pr": pr,
            "kl": kl,
        }
        result["edit_id"], status = saved(
            lambda: store.add_edit(run["id"], explanation_id, result), "mask result"
        )
        ctx.progress(steps, steps)
        return {**result, **status}

    return work
