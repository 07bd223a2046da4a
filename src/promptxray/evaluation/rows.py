"""The rows of an evaluation file: what the model reads, the supplied target, the key.

A row is `prompt` (with an optional `system_prompt`) or `messages`, optionally
with a `target`; each becomes a `PromptRecord` whose key is the row's `id` (or
line) plus a hash of everything that changes its results, so a stored row is
never mistaken for another's. A bad line is reported by number and skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import conversation_from, recorded_messages
from ..batch import BadLine, read_jsonl, row_key
from ..errors import EmptyTargetError, InvalidParameterError, PromptXrayError
from ..roles import ROLE_USER, Message

_NO_CONTRAST = (
    "'contrast' is not evaluated: the faithfulness metrics regenerate and score the target "
    "alone, not log p(target) - log p(contrast); explain takes a contrast, one prompt at a "
    "time."
)


@dataclass(frozen=True)
class PromptRecord:
    """One usable row: the messages the model reads and, optionally, a supplied target.

    A `prompt` (with an optional `system_prompt`) is the one- or two-message case of
    `messages`, so both kinds of row run through the same code. `target` is the text
    explained and measured against instead of the model's generation: the row's
    `target`, or the content of a final assistant message.
    """

    line: int
    key: str
    context: tuple[Message, ...]
    target: str | None = None

    @property
    def prompt(self) -> str:
        """The last user message: what a single-turn row calls its prompt."""
        return next(m.content for m in reversed(self.context) if m.role == ROLE_USER)

    @property
    def messages(self) -> list[dict[str, str]]:
        """The context as `build_problem(messages=...)` takes it."""
        return [m.as_dict() for m in self.context]

    @property
    def recorded_messages(self) -> list[dict[str, str]] | None:
        """The conversation a stored output keeps: None for a prompt (+ system prompt)."""
        return recorded_messages(self.context)

    @property
    def sha(self) -> str:
        """The content part of every stored row's key: all the model reads, and the target.

        Two rows with one `id` that differ only in an earlier turn, the system prompt or
        the supplied target must never share rows. A plain prompt hashes as it always
        has (its text alone), so result folders of single-turn runs still resume.
        """
        if self.target is None and self.recorded_messages is None and len(self.context) == 1:
            text = self.prompt
        else:
            text = json.dumps(
                {"messages": self.messages, "target": self.target},
                sort_keys=True,
                ensure_ascii=False,
            )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def source_texts(self) -> list[str]:
        """The texts whose units are masked: every message the model reads."""
        return [m.content for m in self.context]


def check_row(obj: Mapping[str, Any]) -> tuple[tuple[Message, ...], str | None]:
    """The one check of an input row: (the messages the model reads, the supplied target).

    A row has `prompt` (optionally `system_prompt`) or `messages`, checked by the
    library's own `conversation_from`, so a bad conversation reads the same here as
    on the CLI and the page; optionally a non-empty `target`. A row with `contrast`
    is refused: mask-and-regenerate, PR and KL measure how the target alone moves, so
    they would not test an attribution of log p(target) - log p(contrast) and a
    table of them would look faithful or not for the wrong reason.
    """
    if obj.get("contrast") is not None:
        raise InvalidParameterError(_NO_CONTRAST)
    prompt, system_prompt, target = (
        _text_field(obj, name) for name in ("prompt", "system_prompt", "target")
    )
    conversation = conversation_from(prompt, system_prompt, obj.get("messages"))
    if target is not None and not target.strip():
        raise EmptyTargetError("The target is empty: give the response to measure against.")
    return conversation.context, conversation.target(target)


def _text_field(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidParameterError(f"'{name}' must be text; got a {type(value).__name__}.")
    return value


def read_prompts(path: str | Path) -> tuple[list[PromptRecord], list[BadLine]]:
    """The usable rows of a JSONL file and the lines that are not (see `check_row`).

    A bad line (not JSON, not an object, a row `check_row` refuses) is reported with
    its line number and the problem in one line, and skipped, so one broken row
    does not cost the whole run.
    """
    lines, bad = read_jsonl(path)
    records: list[PromptRecord] = []
    seen: set[str] = set()
    for number, obj in lines:
        try:
            context, target = check_row(obj)
        except PromptXrayError as exc:
            bad.append(BadLine(number, str(exc)))
            continue
        records.append(PromptRecord(number, row_key(obj, number, seen), context, target))
    bad.sort(key=lambda b: b.line)
    return records, bad


def usable_prompts(path: str | Path) -> tuple[list[PromptRecord], list[BadLine]]:
    """`read_prompts`, refusing a file none of whose rows is usable with the first bad
    row's line and problem, so a one-row file with a broken row says what is wrong."""
    records, bad = read_prompts(path)
    if not records and bad:
        more = f" ({len(bad) - 1} more bad lines)" if len(bad) > 1 else ""
        raise InvalidParameterError(
            f"No usable prompts in {path}: line {bad[0].line}: {bad[0].reason}{more}"
        )
    return records, bad
