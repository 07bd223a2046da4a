"""The study file: one prompt per JSONL line, labelled, with named parts and checks.

A row is

    {"id": "sky-if", "group": "sky", "task": "qa", "structure": "instruction-first",
     "template": "{instruction} {input}",
     "slots": {"instruction": "Answer in one word:", "input": "What color is the sky?"},
     "system": "You are terse.",                       (optional system prompt)
     "checks": {"one_word": true}}                      (optional adherence checks)

or, instead of `template`/`slots`, a `prompt` with `parts` given as character
spans (`{"instruction": [0, 19]}` or a list of spans) or as text that occurs in
the prompt (`{"constraint": "in one word"}`: every occurrence is that part).
A `system` prompt is the part `system`. `group` ties together the same content
under different structures (the report's gallery and paired comparisons use it;
default: the id). Part names come from PART_NAMES so that shares compare across
rows; anything else is an error for that line, as is a part text that is not in
the prompt or a check of unknown kind (see `checks.py`).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..batch import BadLine, RowError, read_jsonl, row_key
from .checks import Check, parse_checks

PART_NAMES = (
    "system",
    "instruction",
    "constraint",
    "input",
    "context",
    "examples",
    "question",
    "format",
)
OTHER = "other"  # prompt text outside every named part

Span = tuple[int, int]


@dataclass(frozen=True)
class PartSpan:
    part: str
    role: str  # "user" (the prompt) or "system"
    start: int
    end: int


@dataclass(frozen=True)
class StudyRow:
    line: int
    key: str
    task: str
    structure: str
    prompt: str
    system_prompt: str | None
    parts: tuple[PartSpan, ...]
    checks: tuple[Check, ...] = ()
    group: str = ""

    @property
    def sha(self) -> str:
        text = f"{self.system_prompt or ''}\x00{self.prompt}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def part_names(self) -> list[str]:
        return sorted({p.part for p in self.parts}, key=PART_NAMES.index)


def read_study(path: str | Path) -> tuple[list[StudyRow], list[BadLine]]:
    """Every usable row of a study file, and each unusable line with its reason."""
    lines, bad = read_jsonl(path)
    rows: list[StudyRow] = []
    seen: set[str] = set()
    for number, obj in lines:
        try:
            rows.append(parse_row(obj, number, seen))
        except RowError as exc:
            bad.append(BadLine(number, str(exc)))
    bad.sort(key=lambda b: b.line)
    return rows, bad


def parse_row(obj: dict[str, Any], line: int, seen: set[str] | None = None) -> StudyRow:
    for name in ("task", "structure"):
        if not isinstance(obj.get(name, "unlabelled"), str):
            raise RowError(f"'{name}' must be a string")
    system = obj.get("system")
    if system is not None and (not isinstance(system, str) or not system.strip()):
        raise RowError("'system' must be a non-empty string when given")
    if "template" in obj:
        if "prompt" in obj:
            raise RowError("give either 'template' with 'slots' or 'prompt', not both")
        prompt, parts = fill_template(obj["template"], obj.get("slots"))
    else:
        prompt = obj.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise RowError("no non-empty 'prompt' string (or 'template' with 'slots')")
        parts = parts_in_prompt(prompt, obj.get("parts") or {})
    if not prompt.strip():
        raise RowError("the prompt is empty")
    if system is not None:
        parts = [PartSpan("system", "system", 0, len(system)), *parts]
    checks = parse_checks(obj.get("checks") or {})
    key = row_key(obj, line, seen if seen is not None else set())
    return StudyRow(
        line=line,
        key=key,
        task=obj.get("task", "unlabelled"),
        structure=obj.get("structure", "unlabelled"),
        prompt=prompt,
        system_prompt=system,
        parts=tuple(parts),
        checks=tuple(checks),
        group=str(obj.get("group") or key),
    )


def _check_part_name(name: Any) -> str:
    if name not in PART_NAMES:
        raise RowError(f"unknown part name {name!r}; parts are {', '.join(PART_NAMES)}")
    if name == "system":
        raise RowError("the part 'system' is the row's 'system' prompt; give it there")
    return name


def fill_template(template: Any, slots: Any) -> tuple[str, list[PartSpan]]:
    """The prompt a template makes from its slots, and where each slot's text landed."""
    if not isinstance(template, str):
        raise RowError("'template' must be a string")
    if not isinstance(slots, dict) or not all(isinstance(v, str) for v in slots.values()):
        raise RowError("'slots' must map slot names to strings")
    out: list[str] = []
    parts: list[PartSpan] = []
    position = 0
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RowError(f"bad template: {exc}") from None
    for literal, name, spec, conversion in pieces:
        out.append(literal)
        position += len(literal)
        if name is None:
            continue
        if spec or conversion:
            raise RowError(f"slot {{{name}}} takes no format spec or conversion")
        _check_part_name(name)
        if name not in slots:
            raise RowError(f"the template uses {{{name}}} but 'slots' has no {name!r}")
        text = slots[name]
        out.append(text)
        if text:
            parts.append(PartSpan(name, "user", position, position + len(text)))
        position += len(text)
    unused = set(slots) - {p[1] for p in pieces if p[1] is not None}
    if unused:
        raise RowError(f"slots not in the template: {', '.join(sorted(unused))}")
    return "".join(out), parts


def parts_in_prompt(prompt: str, given: Any) -> list[PartSpan]:
    """Parts given as spans ([start, end] or a list of them) or as text found in the prompt."""
    if not isinstance(given, dict):
        raise RowError("'parts' must map part names to spans or texts")
    parts: list[PartSpan] = []
    for name, value in given.items():
        _check_part_name(name)
        if isinstance(value, str):
            if not value:
                raise RowError(f"part {name!r} is empty")
            start = prompt.find(value)
            if start < 0:
                raise RowError(f"the text of part {name!r} ({value!r}) is not in the prompt")
            while start >= 0:
                parts.append(PartSpan(name, "user", start, start + len(value)))
                start = prompt.find(value, start + len(value))
            continue
        spans = [value] if value and isinstance(value[0], int) else value
        for span in spans or []:
            if (
                not isinstance(span, list | tuple)
                or len(span) != 2
                or not all(isinstance(x, int) for x in span)
                or not 0 <= span[0] < span[1] <= len(prompt)
            ):
                raise RowError(
                    f"part {name!r}: a span is [start, end] with 0 <= start < end <= "
                    f"{len(prompt)}; got {span!r}"
                )
            parts.append(PartSpan(name, "user", span[0], span[1]))
    _check_overlaps(parts)
    return parts


def _check_overlaps(parts: list[PartSpan]) -> None:
    ordered = sorted(parts, key=lambda p: (p.start, p.end))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start < a.end:
            raise RowError(f"parts {a.part!r} and {b.part!r} overlap; a character has one part")


def part_of(parts: tuple[PartSpan, ...], role: str, span: Span | None) -> str:
    """The part a unit belongs to: the one its characters overlap most (else OTHER)."""
    if span is None:
        return OTHER
    best, overlap = OTHER, 0
    for p in parts:
        if p.role != role:
            continue
        shared = min(p.end, span[1]) - max(p.start, span[0])
        if shared > overlap:
            best, overlap = p.part, shared
    return best
