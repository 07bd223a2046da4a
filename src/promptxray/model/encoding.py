"""Prompt encoding: the chat template applied, every token traced to the user's text.

Everything else in promptxray sees token ids, roles, turns and character spans, so
an attribution can always be shown on the user's own text, never on template soup.
A prompt is a list of messages (a conversation); a prompt with an optional system
prompt is the two-message case. This room needs only the tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import EmptyPromptError, InvalidParameterError, ModelLoadError, PromptTooLongError
from ..roles import (
    ROLE_SYSTEM,
    ROLE_TEMPLATE,
    ROLE_USER,
    Message,
    Span,
)


def _marker(turn: int) -> str:
    """A stand-in for turn `turn`'s content that no template rewrites (invisible separators)."""
    return f"\u2063PXRAY{turn}\u2063"


@dataclass
class PromptEncoding:
    """A prompt as the model sees it, with each token traced back to the user's text.

    `turns[i]` is the index in `messages` of the message token i comes from and
    `spans[i]` a character range in that message's content; template and special
    tokens have role "template", no turn and no span. `prompt` is the last user
    message and `system_prompt` a leading system message (None without one), which
    is all there is for a single-turn prompt.
    """

    prompt: str
    system_prompt: str | None
    ids: list[int]
    roles: list[str]
    spans: list[Span | None]
    turns: list[int | None] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


class PromptEncoder:
    """Text to token ids and back, with roles and character spans."""

    def __init__(self, tokenizer: Any, max_context: int) -> None:
        self.tokenizer = tokenizer
        self.max_context = max_context
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.special_ids = set(self.tokenizer.all_special_ids)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def start_token_id(self) -> int | None:
        """The token a document starts with (BOS, else EOS): the context of an empty prompt."""
        for candidate in (self.tokenizer.bos_token_id, self.tokenizer.eos_token_id):
            if candidate is not None:
                return int(candidate)
        return None

    def encode_prompt(self, prompt: str, system_prompt: str | None = None) -> PromptEncoding:
        """A single-turn prompt: a user message after an optional system message."""
        if not prompt or not prompt.strip():
            raise EmptyPromptError("The prompt is empty: give some text to explain.")
        messages = [Message(ROLE_USER, prompt)]
        if system_prompt:
            messages.insert(0, Message(ROLE_SYSTEM, system_prompt))
        return self.encode_messages(messages)

    def encode_messages(self, messages: Sequence[Message]) -> PromptEncoding:
        """Render the conversation for the model to answer next and trace every token.

        With a chat template, each message's content is a marker while the template
        renders (with the generation prompt), so the text around the markers is the
        template's own. A model without a chat template (a base model such as Gemma 3
        270M) reads the contents joined by blank lines after its BOS token, the same
        text a system prompt and a prompt always gave it.
        """
        messages = list(messages)
        if self.has_chat_template:
            pieces = self._template_pieces(messages)
        else:
            bos = self.tokenizer.bos_token if self._adds_bos() else ""
            pieces = [bos]
            for turn in range(len(messages)):
                pieces.extend(["\n\n", turn] if turn else [turn])
        text, regions = _fill(pieces, messages)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        roles: list[str] = []
        spans: list[Span | None] = []
        turns: list[int | None] = []
        for start, end in enc["offset_mapping"]:
            turn, span = _trace(regions, start, end)
            roles.append(ROLE_TEMPLATE if turn is None else messages[turn].role)
            spans.append(span)
            turns.append(turn)
        if len(ids) >= self.max_context:
            raise PromptTooLongError(
                f"The prompt is {len(ids)} tokens; this model reads at most {self.max_context}."
            )
        prompt = next((m.content for m in reversed(messages) if m.role == ROLE_USER), "")
        system = messages[0].content if messages and messages[0].role == ROLE_SYSTEM else None
        return PromptEncoding(prompt, system, ids, roles, spans, turns, messages)

    def _adds_bos(self) -> bool:
        probe = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        return bool(probe) and probe[0] == self.tokenizer.bos_token_id

    def _template_pieces(self, messages: list[Message]) -> list[str | int]:
        """The rendered template cut at each message's marker (the turn index in its place).

        A template may refuse a conversation (e.g. no system role, roles that must
        alternate) or drop or rewrite a message; either is one line for the user,
        since a message the model never reads verbatim cannot be attributed.
        """
        stand_in = [{"role": m.role, "content": _marker(t)} for t, m in enumerate(messages)]
        try:
            rendered = self.tokenizer.apply_chat_template(
                stand_in, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # the template is the model's code: any refusal is input
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise InvalidParameterError(
                f"This model's chat template refuses the conversation: {reason}"
            ) from exc
        found = []
        for turn, message in enumerate(messages):
            marker = _marker(turn)
            if rendered.count(marker) != 1:
                what = "user's text" if message.role == ROLE_USER else f"{message.role} text"
                raise ModelLoadError(
                    f"The chat template does not place the {what} of turn {turn} verbatim "
                    "(it drops, repeats or rewrites it)."
                )
            found.append((rendered.index(marker), turn))
        out: list[str | int] = []
        cursor = 0
        for where, turn in sorted(found):
            out.extend([rendered[cursor:where], turn])
            cursor = where + len(_marker(turn))
        out.append(rendered[cursor:])
        return out

    def token_pieces(self, ids: list[int]) -> list[str]:
        """Human-readable text of each token (byte-level markers decoded)."""
        return [self.tokenizer.decode([i], clean_up_tokenization_spaces=False) for i in ids]

    def tokenize_text(self, text: str) -> tuple[list[int], list[Span]]:
        """Tokens of a free text (a target) and their character spans in it."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]

    def decode_with_spans(self, ids: list[int]) -> tuple[str, list[Span]]:
        """Decode generated ids and give each token its character span in the text."""
        text = self.decode(ids)
        spans: list[Span] = []
        prev = 0
        for k in range(len(ids)):
            end = len(self.decode(ids[: k + 1]))
            end = min(max(end, prev), len(text))
            spans.append((prev, end))
            prev = end
        return text, spans

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )


def _fill(pieces: list[str | int], messages: list[Message]) -> tuple[str, dict[int, Span]]:
    """The template text with each message's content in place, and where each turn sits."""
    text = ""
    regions: dict[int, Span] = {}
    for piece in pieces:
        if isinstance(piece, int):
            content = messages[piece].content
            regions[piece] = (len(text), len(text) + len(content))
            text += content
        else:
            text += piece
    return text, regions


def _trace(regions: dict[int, Span], start: int, end: int) -> tuple[int | None, Span | None]:
    """The turn a token at characters start:end comes from, and its span in that content."""
    for turn, (r0, r1) in regions.items():
        if end > r0 and start < r1 and end > start:
            return turn, (max(start, r0) - r0, min(end, r1) - r0)
    return None, None
