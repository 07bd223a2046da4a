"""Turn (prompt, what to explain) into one token sequence with sources and a target.

Three targets share one shape: the model's own generation, a text the user
supplies, or a character span of the output. For a span, the output tokens before
it become sources too (role "output"), because earlier output drives later output.
A prompt may be a conversation (`conversation`): every message before the final
assistant turn is a source, earlier assistant turns included, and the final turn
is the output (a final assistant message is a given target).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .conversation import conversation_from, source_text
from .errors import EmptyTargetError, PromptTooLongError, SpanError
from .model import (
    ROLE_OUTPUT,
    ROLE_TEMPLATE,
    LanguageModel,
    PromptEncoding,
    Span,
)
from .segments import Unit, group_units


@dataclass
class Problem:
    """One sequence `ids` = prompt + output context + target, with per-position facts."""

    encoding: PromptEncoding
    output: str
    output_ids: list[int]
    output_spans: list[Span]
    target_span: Span
    target_token_range: tuple[int, int]
    # "generated" by this model, or "given": a text supplied to be scored (an answer
    # from another backend or a log), which results must not pass off as this model's.
    output_source: str = "generated"
    # "Why the target and not this?": a second text teacher-forced from the same context
    # (the quantity becomes log p(target) - log p(contrast), see `methods.quantity`).
    contrast: str | None = None
    contrast_ids: list[int] | None = None
    contrast_spans: list[Span] = field(default_factory=list, repr=False)  # in `contrast`

    def contrast_problem(self) -> Problem:
        """The same context with the contrast in the target's place (no contrast of its own)."""
        if self.contrast is None or self.contrast_ids is None:
            raise SpanError("This problem has no contrast.")
        a = self.target_token_range[0]
        start = self.target_span[0]
        return replace(
            self,
            output=self.output[:start] + self.contrast,
            output_ids=self.output_ids[:a] + list(self.contrast_ids),
            output_spans=list(self.output_spans[:a])
            + [(start + x, start + y) for x, y in self.contrast_spans],
            target_span=(start, start + len(self.contrast)),
            target_token_range=(a, a + len(self.contrast_ids)),
            contrast=None,
            contrast_ids=None,
            contrast_spans=[],
        )

    @property
    def target_text(self) -> str:
        """The explained text: the output's characters in `target_span`."""
        return self.output[self.target_span[0] : self.target_span[1]]

    @property
    def context_ids(self) -> list[int]:
        """Everything the target is conditioned on."""
        return self.encoding.ids + self.output_ids[: self.target_token_range[0]]

    @property
    def target_ids(self) -> list[int]:
        a, b = self.target_token_range
        return self.output_ids[a:b]

    @property
    def ids(self) -> list[int]:
        return self.context_ids + self.target_ids

    @property
    def target_start(self) -> int:
        return len(self.context_ids)

    @property
    def roles(self) -> list[str]:
        return self.encoding.roles + [ROLE_OUTPUT] * self.target_token_range[0]

    @property
    def spans(self) -> list[Span | None]:
        return self.encoding.spans + list(self.output_spans[: self.target_token_range[0]])

    @property
    def answer_turn(self) -> int:
        """The index of the final assistant turn: the output, explained or before the target."""
        return len(self.encoding.messages)

    @property
    def turns(self) -> list[int | None]:
        """Per position, the message it comes from (None for template tokens)."""
        return self.encoding.turns + [self.answer_turn] * self.target_token_range[0]

    @property
    def source_positions(self) -> list[int]:
        """Positions in `ids` that are scored: user/system text and earlier output."""
        return [i for i, role in enumerate(self.roles) if role != ROLE_TEMPLATE]

    @property
    def template_positions(self) -> list[int]:
        return [i for i, role in enumerate(self.roles) if role == ROLE_TEMPLATE]

    def role_text(self, role: str, turn: int | None = None) -> str:
        """The text a span of this role and turn indexes into (`conversation.source_text`)."""
        return source_text(
            role,
            turn,
            messages=self.encoding.messages,
            prompt=self.encoding.prompt,
            system_prompt=self.encoding.system_prompt,
            earlier_output=self.output[: self.target_span[0]],
        )

    def token_units(self) -> list[Unit]:
        """One unit per source token; `tokens` index into `source_positions`."""
        units = []
        roles, spans, turns = self.roles, self.spans, self.turns
        for k, position in enumerate(self.source_positions):
            role, span, turn = roles[position], spans[position], turns[position]
            text = self.role_text(role, turn)[span[0] : span[1]] if span else ""
            units.append(Unit(text=text, role=role, span=span, tokens=[k], turn=turn))
        return units

    def units(self, granularity: str, pattern: str | None = None) -> list[Unit]:
        """Source units at a granularity; perturbation methods mask these whole."""
        base = self.token_units()
        if granularity == "token":
            return base
        return group_units(base, self.role_text, granularity, pattern)[0]

    def target_pieces(self, lm: LanguageModel) -> list[str]:
        return lm.token_pieces(self.target_ids)


def build_problem(
    lm: LanguageModel,
    prompt: str | None = None,
    *,
    messages: Any = None,
    system_prompt: str | None = None,
    target: str | None = None,
    span: Span | None = None,
    output_ids: list[int] | None = None,
    max_new_tokens: int = 64,
    on_token: Callable[[int], None] | None = None,
    contrast: str | None = None,
) -> Problem:
    """Encode the prompt, get the output (given, reused or generated) and place the target.

    The prompt is `prompt` (with an optional `system_prompt`) or `messages`, a
    conversation (see `conversation.check_messages`). `target` is a text to explain
    instead of the model's own output (a conversation ending with an assistant
    message gives it instead); `span` is a character range of the output to
    explain; `output_ids` reuses an earlier generation so explaining a span never
    regenerates. `contrast` is a text B to explain the target A against: A and B
    are both teacher-forced from the context before the target, and methods
    attribute log p(A) - log p(B).
    """
    conversation = conversation_from(prompt, system_prompt, messages)
    target = conversation.target(target)
    encoding = lm.encode_messages(conversation.context)
    if target is not None:
        if output_ids is not None:
            raise SpanError("Give either a target text or earlier output ids, not both.")
        ids, spans = lm.tokenize_text(target)
        if not ids:
            raise EmptyTargetError("The target text is empty after tokenisation.")
        output = target
    else:
        if output_ids is None:
            output_ids = lm.generate(encoding.ids, max_new_tokens=max_new_tokens, on_token=on_token)
        ids = list(output_ids)
        if not ids:
            raise EmptyTargetError(
                "The model generated nothing for this prompt, so there is nothing to explain."
            )
        output, spans = lm.decode_with_spans(ids)
    total = len(encoding.ids) + len(ids)
    if total > lm.max_context:
        raise PromptTooLongError(
            f"Prompt and target are {total} tokens; this model reads at most {lm.max_context}."
        )
    if span is None:
        token_range = (0, len(ids))
        target_span: Span = (0, len(output))
    else:
        token_range = _tokens_in_span(spans, span, len(output))
        target_span = (spans[token_range[0]][0], spans[token_range[1] - 1][1])
    contrast_ids, contrast_spans = _contrast_tokens(lm, contrast)
    if (
        contrast_ids is not None
        and total - (token_range[1] - token_range[0]) + len(contrast_ids) > lm.max_context
    ):
        raise PromptTooLongError(
            f"Prompt and contrast are more than {lm.max_context} tokens, which this model reads."
        )
    return Problem(
        encoding=encoding,
        output=output,
        output_ids=ids,
        output_spans=list(spans),
        target_span=target_span,
        target_token_range=token_range,
        output_source="given" if target is not None else "generated",
        contrast=contrast,
        contrast_ids=contrast_ids,
        contrast_spans=contrast_spans,
    )


def _contrast_tokens(
    lm: LanguageModel, contrast: str | None
) -> tuple[list[int] | None, list[Span]]:
    """The contrast's tokens and spans, or (None, []) without one; an empty one is refused."""
    if contrast is None:
        return None, []
    ids, spans = lm.tokenize_text(contrast)
    if not ids:
        raise EmptyTargetError(
            "The contrast text is empty after tokenisation: give the alternative to compare "
            "the target with."
        )
    return ids, list(spans)


def _tokens_in_span(spans: list[Span], span: Span, length: int) -> tuple[int, int]:
    start, end = span
    if not (0 <= start < end <= length):
        raise SpanError(
            f"Span {start}:{end} is outside the output, which has {length} characters "
            f"(give START:END with 0 <= START < END <= {length})."
        )
    inside = [i for i, (a, b) in enumerate(spans) if b > start and a < end and b > a]
    if not inside:
        raise SpanError(f"Span {start}:{end} covers no output token.")
    return inside[0], inside[-1] + 1


def parse_span(text: str) -> Span:
    """Parse 'START:END' as typed on the command line."""
    try:
        a, b = text.split(":")
        return int(a), int(b)
    except ValueError as exc:
        raise SpanError(f"A span is START:END in characters, e.g. 0:20; got {text!r}.") from exc
