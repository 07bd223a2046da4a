"""The work the model does for the page: generate, explain, check, mask and regenerate.

Each function here checks nothing about the request (the service already did,
so bad input fails fast with a 4xx) and returns a job body that runs on the one
worker thread. Results are saved to the history before the job reports done, so
a page that reloads mid-job, or was closed, still finds them there. When the
history cannot be written the result is still returned, with `saved: False` and
a `warning` the page shows; the record stays usable until the server stops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import api
from ..api import Ablation, FaithfulnessCheck, LanguageModel, MarkedText, Problem, Request
from ..attribution import Attribution
from ..render.pieces import unit_place
from .compare import word_diff
from .jobs import JobContext, JobFn
from .store import HistoryStore, HistoryWriteError
from .views import check_view, explanation_view


def saved(write: Callable[[], str], what: str) -> tuple[str, dict[str, Any]]:
    """Run a history write; the record id and the fields that tell the page how it went."""
    try:
        return write(), {"saved": True, "warning": None}
    except HistoryWriteError as exc:
        return exc.record_id, {"saved": False, "warning": exc.warning(what)}


@dataclass(frozen=True)
class RunPrompt:
    """What a run records about its prompt: the checked conversation, as the store keeps it.

    `messages` is None for a single-turn prompt (`prompt` and `system_prompt` say it all).
    """

    prompt: str
    system_prompt: str | None
    messages: list[dict[str, str]] | None
    max_new_tokens: int

    def save(
        self,
        lm: LanguageModel,
        store: HistoryStore,
        output: str,
        output_ids: list[int],
        output_source: str,
    ) -> tuple[str, dict[str, Any]]:
        """Save the run with its output; its id and how the write went."""
        return saved(
            lambda: store.add_run(
                model=lm.name,
                prompt=self.prompt,
                system_prompt=self.system_prompt,
                max_new_tokens=self.max_new_tokens,
                output=output,
                output_ids=output_ids,
                messages=self.messages,
                output_source=output_source,
            ),
            "run",
        )


def generate_job(
    lm: LanguageModel, store: HistoryStore, prompt: RunPrompt, prompt_ids: list[int]
) -> JobFn:
    """Greedy generation that streams its partial text into the job as it goes."""

    def work(ctx: JobContext) -> dict[str, Any]:
        produced: list[int] = []
        room = max(1, min(prompt.max_new_tokens, lm.max_context - len(prompt_ids)))
        ctx.progress(0, room)

        def on_token(token: int) -> None:
            produced.append(token)
            ctx.partial(lm.decode(produced))
            ctx.progress(min(len(produced), room), room)

        output_ids = lm.generate(prompt_ids, max_new_tokens=room, on_token=on_token)
        output = lm.decode(output_ids)
        run_id, status = prompt.save(lm, store, output, output_ids, "generated")
        return {
            "run_id": run_id,
            "output": output,
            "n_tokens": len(output_ids),
            "output_source": "generated",
            **status,
        }

    return work


def supplied_job(
    lm: LanguageModel, store: HistoryStore, prompt: RunPrompt, problem: Problem
) -> JobFn:
    """Record a response supplied by the user as the run's output: no generation.

    A job like generation, so the page waits on it the same way; the problem was
    built (and so checked) when the request came in.
    """

    def work(ctx: JobContext) -> dict[str, Any]:
        ctx.progress(0, 1)
        run_id, status = prompt.save(lm, store, problem.output, problem.output_ids, "given")
        ctx.partial(problem.output)
        ctx.progress(1, 1)
        return {
            "run_id": run_id,
            "output": problem.output,
            "n_tokens": len(problem.output_ids),
            "output_source": "given",
            **status,
        }

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
        attr = api.run(lm, problem, request, matrix=settings["matrix"], progress=ctx.progress)
        explanation_id, status = saved(
            lambda: store.add_explanation(run_id, settings, attr), "explanation"
        )
        return {**explanation_view(explanation_id, run_id, attr, settings), **status}

    return work


def check_answer(explanation_id: str, granularity: str, check: FaithfulnessCheck) -> dict[str, Any]:
    """A check job's result: the check as the page draws it, and what it was asked of."""
    return {
        "explanation_id": explanation_id,
        "granularity": granularity,
        "token": check.token,
        "check": check_view(check),
    }


def check_job(
    lm: LanguageModel,
    store: HistoryStore,
    explanation_id: str,
    view: Attribution,
    problem: Problem,
    k: int | None,
    token: int | None,
) -> JobFn:
    """The faithfulness check of a stored result at the units of `view` (regrouped, so
    computed again there), or of its heatmap row `token`; kept in the history's cache."""

    def work(ctx: JobContext) -> dict[str, Any]:
        ctx.progress(0, 1)
        check = api.check_result(lm, problem, view, k=k, token=token)
        store.add_check(explanation_id, view.granularity, token, k, check)
        ctx.progress(1, 1)
        return check_answer(explanation_id, view.granularity, check)

    return work


def marked_pieces(marked: MarkedText) -> list[dict[str, Any]]:
    """A text as the mask card draws it: pieces, each `removed` when a masked unit covers it.

    Removed pieces are struck through, so every part of the context the model lost
    is visible: every turn, system prompt, prompt and earlier output.
    """
    return [{"text": piece, "removed": cut} for piece, cut in marked.pieces]


def kept_text(pieces: list[dict[str, Any]]) -> str:
    """What is left of a text once its removed pieces are cut (whitespace tidied)."""
    kept = "".join(p["text"] for p in pieces if not p["removed"])
    lines = [" ".join(line.split()) for line in kept.split("\n")]
    return "\n".join(lines).strip()


def masked_context_view(ablation: Ablation, conversation: bool) -> dict[str, Any]:
    """The context as the regeneration saw it: each text with its removals marked.

    A conversation gets every turn under its label (`turn_pieces`); a single-turn
    prompt its system prompt and prompt, as before.
    """
    system_pieces = marked_pieces(ablation.system)
    view: dict[str, Any] = {
        "system_pieces": system_pieces,
        "prompt_pieces": marked_pieces(ablation.prompt),
        "prefix_pieces": marked_pieces(ablation.earlier_output),
        "masked_system": kept_text(system_pieces) if ablation.system.text else None,
        "turn_pieces": None,
        "masked_messages": None,
    }
    if conversation:
        view["turn_pieces"] = [
            {
                "role": marked.role,
                "turn": marked.turn,
                "label": api.turn_label(marked.role, marked.turn),
                "pieces": marked_pieces(marked),
            }
            for marked in ablation.turns
        ]
        view["masked_messages"] = ablation.masked_messages
    return view


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
        units = view.units
        room = max(1, run["max_new_tokens"] - problem.target_token_range[0])
        ctx.progress(0, room + 1)  # every generated token, then PR and KL together
        produced: list[int] = []

        def on_token(token: int) -> None:
            produced.append(token)
            ctx.partial(lm.decode(produced))

        ablation = api.ablate(
            lm,
            problem,
            units,
            masked,
            operator,
            regenerate=room,
            on_token=on_token,
            progress=ctx.progress,
        )
        start = problem.target_span[0]
        before, after = problem.output[start:], ablation.regenerated or ""
        result = {
            "explanation_id": explanation_id,
            "granularity": view.granularity,
            "operator": operator,
            "masked": sorted(masked),
            "masked_units": [
                {
                    "index": i,
                    "text": units[i].text,
                    "role": units[i].role,
                    "turn": units[i].turn,
                    "place": unit_place(view, units[i]),
                }
                for i in sorted(masked)
            ],
            "masked_prompt": ablation.masked_prompt,
            **masked_context_view(ablation, view.messages is not None),
            "prefix": problem.output[:start],
            "original": before,
            "regenerated": after,
            "diff": word_diff(before, after),
            "target": problem.output[start : problem.target_span[1]],
            "pr": ablation.pr,
            "kl": ablation.kl,
        }
        result["edit_id"], status = saved(
            lambda: store.add_edit(run["id"], explanation_id, result), "mask result"
        )
        ctx.progress(room + 1, room + 1)
        return {**result, **status}

    return work
