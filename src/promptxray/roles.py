"""Who wrote each piece of a prompt: the one small vocabulary every layer shares.

Roles, turns and spans are how a result names its units, so views, the server and the
evaluation need them without needing the model; they live here, below everything, and
`model.encoding` uses them like any other caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Who wrote a token: a message's author (user, system, an earlier assistant turn),
    the chat template, or the output before the explained target."""

    USER = "user"
    SYSTEM = "system"
    ASSISTANT = "assistant"
    TEMPLATE = "template"
    OUTPUT = "output"


ROLE_USER, ROLE_SYSTEM, ROLE_ASSISTANT, ROLE_TEMPLATE, ROLE_OUTPUT = (
    Role.USER,
    Role.SYSTEM,
    Role.ASSISTANT,
    Role.TEMPLATE,
    Role.OUTPUT,
)
MESSAGE_ROLES: tuple[str, ...] = (ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT)

Span = tuple[int, int]


@dataclass(frozen=True)
class Message:
    """One turn of a conversation, as chat templates take it (checked by `conversation`)."""

    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def turn_label(role: str, turn: int | None) -> str:
    """How every view names a turn: "[turn 2 · assistant]"; earlier output is the answer's."""
    who = ROLE_ASSISTANT if role == ROLE_OUTPUT else role
    return f"[turn {turn} · {who}]" if turn is not None else f"[{who}]"
