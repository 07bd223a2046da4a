"""Prompt encoding: the chat template applied, every token traced to the user's text.

Everything else in promptxray sees token ids, roles and character spans, so an
attribution can always be shown on the user's own text, never on template soup.
This room needs only the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..errors import EmptyPromptError, ModelLoadError, PromptTooLongError


class Role(StrEnum):
    """Who wrote a token: the user, the system prompt, the chat template, or earlier output."""

    USER = "user"
    SYSTEM = "system"
    TEMPLATE = "template"
    OUTPUT = "output"


ROLE_USER, ROLE_SYSTEM, ROLE_TEMPLATE, ROLE_OUTPUT = (
    Role.USER,
    Role.SYSTEM,
    Role.TEMPLATE,
    Role.OUTPUT,
)

Span = tuple[int, int]
_PLACEHOLDER = "\u2063PXRAY\u2063"
_PLACEHOLDER_USER = _PLACEHOLDER + "U"
_PLACEHOLDER_SYSTEM = _PLACEHOLDER + "S"


@dataclass
class PromptEncoding:
    """A prompt as the model sees it, with each token traced back to the user's text.

    `spans[i]` is a character range in `prompt` (role user) or `system_prompt`
    (role system); template and special tokens have no span.
    """

    prompt: str
    system_prompt: str | None
    ids: list[int]
    roles: list[str]
    spans: list[Span | None]


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
        """Apply the chat template (if any) and trace every token to the user's text."""
        if not prompt or not prompt.strip():
            raise EmptyPromptError("The prompt is empty: give some text to explain.")
        system_prompt = system_prompt or None
        if self.has_chat_template:
            pieces = self._template_pieces(system_prompt)
        else:
            bos = self.tokenizer.bos_token if self._adds_bos() else ""
            pieces = [bos, _PLACEHOLDER_USER]
            if system_prompt:
                pieces = [bos, _PLACEHOLDER_SYSTEM, "\n\n", _PLACEHOLDER_USER]
        text, regions = _fill(pieces, prompt, system_prompt)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        roles: list[str] = []
        spans: list[Span | None] = []
        for start, end in enc["offset_mapping"]:
            role, span = ROLE_TEMPLATE, None
            for name, (r0, r1) in regions.items():
                if end > r0 and start < r1 and end > start:
                    role = name
                    span = (max(start, r0) - r0, min(end, r1) - r0)
                    break
            roles.append(role)
            spans.append(span)
        if len(ids) >= self.max_context:
            raise PromptTooLongError(
                f"The prompt is {len(ids)} tokens; this model reads at most {self.max_context}."
            )
        return PromptEncoding(prompt, system_prompt, ids, roles, spans)

    def _adds_bos(self) -> bool:
        probe = self.tokenizer("a", add_special_tokens=True)["input_ids"]
        return bool(probe) and probe[0] == self.tokenizer.bos_token_id

    def _template_pieces(self, system_prompt: str | None) -> list[str]:
        messages = []
        if system_prompt:
            messages.append({"role": "system", "content": _PLACEHOLDER_SYSTEM})
        messages.append({"role": "user", "content": _PLACEHOLDER_USER})
        rendered = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        out: list[str] = []
        rest = rendered
        markers = (
            (_PLACEHOLDER_SYSTEM, _PLACEHOLDER_USER) if system_prompt else (_PLACEHOLDER_USER,)
        )
        for marker in markers:
            before, found, rest = rest.partition(marker)
            if not found:
                raise ModelLoadError("The chat template does not place the user's text verbatim.")
            out.extend([before, marker])
        out.append(rest)
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


def _fill(pieces: list[str], prompt: str, system_prompt: str | None) -> tuple[str, dict[str, Span]]:
    """The template text with the user's (and system) text in place, and where each sits."""
    text = ""
    regions: dict[str, Span] = {}
    for piece in pieces:
        if piece == _PLACEHOLDER_USER:
            regions[ROLE_USER] = (len(text), len(text) + len(prompt))
            text += prompt
        elif piece == _PLACEHOLDER_SYSTEM:
            assert system_prompt is not None
            regions[ROLE_SYSTEM] = (len(text), len(text) + len(system_prompt))
            text += system_prompt
        else:
            text += piece
    return text, regions
