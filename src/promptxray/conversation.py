"""Conversations: the one place a prompt given as messages is checked and read back.

A prompt is a list of messages, `[{"role": "system" | "user" | "assistant",
"content": ...}, ...]`, the format chat templates take; a prompt with an optional
system prompt is the same thing with one or two messages. The explained target is
the final assistant turn: the model's answer to a conversation that ends with a
user message, or the content of a final assistant message (a given answer). Every
earlier message, earlier assistant turns included, is a source.

The API, `build_problem` and the CLI all check messages here, so a bad conversation
reads the same everywhere. Results find the text a unit's span points into with
`source_text`, keyed by the unit's role and turn (roles repeat across turns).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import EmptyPromptError, InvalidParameterError
from .model import (
    MESSAGE_ROLES,
    ROLE_ASSISTANT,
    ROLE_OUTPUT,
    ROLE_SYSTEM,
    ROLE_USER,
    Message,
)

__all__ = [
    "Conversation",
    "check_messages",
    "conversation_from",
    "recorded_messages",
    "require_one_source",
    "source_text",
]

_SHAPE = 'a list of {"role": ..., "content": ...} objects'


@dataclass(frozen=True)
class Conversation:
    """A checked conversation: the turns the model reads, and the answer if one was given."""

    context: tuple[Message, ...]
    answer: str | None = None

    @property
    def answer_turn(self) -> int:
        """The index of the final assistant turn, the one explained."""
        return len(self.context)

    def target(self, given: str | None) -> str | None:
        """The text to explain: the given answer, or `given` (a target passed on its own)."""
        if self.answer is None:
            return given
        if given is not None:
            raise InvalidParameterError(
                "The conversation ends with an assistant message, which is the target; "
                "do not give a target as well."
            )
        return self.answer


def require_one_source(has_prompt: bool, has_system: bool, has_messages: bool) -> None:
    """A prompt (with an optional system prompt) or messages: exactly one of them."""
    if has_messages and (has_prompt or has_system):
        what = "a prompt" if has_prompt else "a system prompt"
        hint = "" if has_prompt else " (a system prompt goes first in the messages)"
        raise InvalidParameterError(f"Give either {what} or messages, not both{hint}.")
    if not has_messages and not has_prompt:
        raise EmptyPromptError("Give a prompt or messages to explain.")


def conversation_from(
    prompt: str | None = None,
    system_prompt: str | None = None,
    messages: Any = None,
) -> Conversation:
    """The conversation a request describes, by a prompt and system prompt or by messages."""
    require_one_source(prompt is not None, bool(system_prompt), messages is not None)
    if messages is not None:
        return check_messages(messages)
    assert prompt is not None
    if not prompt.strip():
        raise EmptyPromptError("The prompt is empty: give some text to explain.")
    context = [Message(ROLE_USER, prompt)]
    if system_prompt:
        context.insert(0, Message(ROLE_SYSTEM, system_prompt))
    return Conversation(tuple(context))


def check_messages(messages: Any) -> Conversation:
    """Check a list of messages and split off a final assistant message (the given answer).

    Refused, each with one line naming the turn: not a list of {role, content}
    objects, a key other than role and content (never silently dropped), an
    unknown role, empty content, an empty conversation, one without a user
    message, one ending with a system message.
    """
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise InvalidParameterError(f"Messages must be {_SHAPE}; got {_kind(messages)}.")
    if not messages:
        raise EmptyPromptError("The conversation is empty: give at least one user message.")
    turns = [_check_message(turn, item) for turn, item in enumerate(messages)]
    if turns[-1].role == ROLE_SYSTEM:
        raise InvalidParameterError(
            "The conversation ends with a system message; end it with a user message (the "
            "model answers it) or an assistant message (the answer to explain)."
        )
    answer = turns.pop().content if turns[-1].role == ROLE_ASSISTANT else None
    if not any(m.role == ROLE_USER for m in turns):
        raise EmptyPromptError("The conversation has no user message before the answer.")
    return Conversation(tuple(turns), answer)


def _check_message(turn: int, item: Any) -> Message:
    if isinstance(item, Message):
        item = item.as_dict()
    if not isinstance(item, Mapping):
        raise InvalidParameterError(
            f'Turn {turn} must be a {{"role": ..., "content": ...}} object; got {_kind(item)}.'
        )
    missing = [key for key in ("role", "content") if key not in item]
    if missing:
        raise InvalidParameterError(f"Turn {turn} has no {' or '.join(missing)}.")
    extra = sorted(str(key) for key in item if key not in ("role", "content"))
    if extra:
        raise InvalidParameterError(
            f"Turn {turn} has {', '.join(extra)}; a message takes only role and content."
        )
    role, content = item["role"], item["content"]
    if role not in MESSAGE_ROLES:
        raise InvalidParameterError(
            f"Turn {turn} has unknown role {role!r}; a role is {', '.join(MESSAGE_ROLES)}."
        )
    if not isinstance(content, str):
        raise InvalidParameterError(f"Turn {turn}'s content must be text; got {_kind(content)}.")
    if not content.strip():
        raise EmptyPromptError(f"Turn {turn} ({role}) is empty: every message needs some text.")
    return Message(str(role), content)


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def recorded_messages(context: Sequence[Message]) -> list[dict[str, str]] | None:
    """What a result records as its conversation: None for a single-turn prompt.

    A user message after an optional system message is exactly what `prompt` and
    `system_prompt` already hold, so such results stay as they always were.
    """
    roles = [m.role for m in context]
    if roles in ([ROLE_USER], [ROLE_SYSTEM, ROLE_USER]):
        return None
    return [m.as_dict() for m in context]


def source_text(
    role: str,
    turn: int | None,
    *,
    messages: Sequence[Message | Mapping[str, str]] | None,
    prompt: str,
    system_prompt: str | None,
    earlier_output: str,
) -> str:
    """The text a unit's span indexes into, by its role and turn.

    Output before the target is the final turn's own text. A message turn is that
    message's content. Without a turn (results saved before turns existed) or a
    recorded conversation, the role decides: the prompt or the system prompt.
    """
    if role == ROLE_OUTPUT:
        return earlier_output
    if messages and turn is not None and 0 <= turn < len(messages):
        message = messages[turn]
        return message.content if isinstance(message, Message) else message["content"]
    if role == ROLE_USER:
        return prompt
    if role == ROLE_SYSTEM:
        return system_prompt or ""
    return ""
