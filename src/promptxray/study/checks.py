"""Adherence checks: did the output do what the prompt's constraint asked?

The heatmap project asks how importance relates to adherence ("one word",
"six-word story"); these are the constraints such prompts state, checked on the
output text. Words are whitespace-separated pieces with at least one letter or
digit, so punctuation and emoji on their own do not count as words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..batch import RowError

CHECK_KINDS = (
    "one_word",
    "max_words",
    "exact_words",
    "regex",
    "must_contain",
    "must_not_contain",
)


class CheckError(ValueError):
    """A check that cannot be run (unknown kind, wrong value type)."""


@dataclass(frozen=True)
class Check:
    kind: str
    value: Any

    def passes(self, output: str) -> bool:
        words = count_words(output)
        if self.kind == "one_word":
            return (words == 1) == bool(self.value)
        if self.kind == "max_words":
            return words <= self.value
        if self.kind == "exact_words":
            return words == self.value
        if self.kind == "regex":
            return re.search(self.value, output) is not None
        needles = [self.value] if isinstance(self.value, str) else list(self.value)
        found = [n.lower() in output.lower() for n in needles]
        return all(found) if self.kind == "must_contain" else not any(found)


def count_words(text: str) -> int:
    return sum(1 for w in text.split() if any(c.isalnum() for c in w))


def parse_checks(given: Any) -> list[Check]:
    """Checks from a row's `checks` object; an unknown kind or a bad value is an error."""
    if not isinstance(given, dict):
        raise RowError("'checks' must map check kinds to values")
    checks = []
    for kind, value in given.items():
        if kind not in CHECK_KINDS:
            raise RowError(f"unknown check {kind!r}; checks are {', '.join(CHECK_KINDS)}")
        ok = {
            "one_word": isinstance(value, bool),
            "max_words": isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            "exact_words": isinstance(value, int) and not isinstance(value, bool) and value >= 1,
            "regex": isinstance(value, str) and _compiles(value),
            "must_contain": _strings(value),
            "must_not_contain": _strings(value),
        }[kind]
        if not ok:
            raise RowError(f"check {kind!r} has a bad value: {value!r}")
        checks.append(Check(kind, value))
    return checks


def adherence(checks: tuple[Check, ...] | list[Check], output: str) -> dict[str, bool] | None:
    """Each check's verdict on the output (None when the row has no checks)."""
    if not checks:
        return None
    return {c.kind: c.passes(output) for c in checks}


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _strings(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)
