"""Laying an attribution back onto the text it came from.

Views draw the user's own text, character for character, and colour the stretch
each unit covers; the gaps between units (spaces, newlines) are kept as they are.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from ..attribution import Attribution
from ..roles import ROLE_OUTPUT, ROLE_SYSTEM, ROLE_USER, turn_label
from ..segments import Unit

# Source roles in reading order, with the heading each view gives them.
SOURCE_ROLES = (
    (ROLE_SYSTEM, "System prompt"),
    (ROLE_USER, "Prompt"),
    (ROLE_OUTPUT, "Earlier output"),
)

_VISIBLE = {"\n": "⏎", "\r": "␍", "\t": "⇥"}
OUTPUT_TITLE = "Output (target highlighted)"


@dataclass(frozen=True)
class Section:
    """One source text a view draws: its role, its turn (None: by role alone), its heading."""

    role: str
    turn: int | None
    title: str


def source_sections(attr: Attribution) -> list[Section]:
    """The texts every view draws, in reading order, the output (with the target) last.

    A conversation shows each turn under its label ("[turn 2 · assistant]"); a
    single-turn prompt shows its system prompt and prompt as it always did.
    """
    messages = getattr(attr, "messages", None)
    if messages is None:
        sections = [
            Section(role, None, title)
            for role, title in SOURCE_ROLES
            if role != ROLE_OUTPUT and attr.role_text(role)
        ]
        return [*sections, Section(ROLE_OUTPUT, None, OUTPUT_TITLE)]
    sections = [
        Section(m["role"], turn, turn_label(m["role"], turn)) for turn, m in enumerate(messages)
    ]
    answer = len(messages)
    title = f"{turn_label(ROLE_OUTPUT, answer)} {OUTPUT_TITLE}"
    return [*sections, Section(ROLE_OUTPUT, answer, title)]


def unit_place(attr: Attribution, unit: Unit) -> str:
    """Where a unit sits, for lists and tooltips: its role, and its turn in a conversation."""
    if getattr(attr, "messages", None) is None or unit.turn is None:
        return unit.role
    return turn_label(unit.role, unit.turn)


def role_pieces(
    text: str, units: list[Unit], role: str, turn: int | None = None
) -> list[tuple[str, int | None]]:
    """Split `text` into (piece, unit index or None); the pieces join back to `text`.

    Only units of `role` (and of `turn`, when given) claim pieces. Units whose spans
    overlap (a multi-byte character split over two tokens gives both the same span)
    keep the first claim; a later unit is clipped, not repeated.
    """
    claims = sorted(
        (u.span[0], u.span[1], i)
        for i, u in enumerate(units)
        if u.role == role and u.span and (turn is None or u.turn == turn)
    )
    pieces: list[tuple[str, int | None]] = []
    cursor = 0
    for start, end, index in claims:
        start, end = max(start, cursor), min(end, len(text))
        if end <= start:
            continue
        if start > cursor:
            pieces.append((text[cursor:start], None))
        pieces.append((text[start:end], index))
        cursor = end
    if cursor < len(text):
        pieces.append((text[cursor:], None))
    return pieces


def visible(text: str, limit: int | None = None) -> str:
    """A one-line label: newlines and tabs as symbols, other control characters dropped."""
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        else:
            out.append(ch)
    label = "".join(out)
    if limit is not None and len(label) > limit:
        label = label[: max(1, limit - 1)] + "…"
    return label


def token_label(piece: str, limit: int | None = None) -> str:
    """A target-token label: surrounding spaces trimmed, a bare space shown as ␣."""
    label = visible(piece, limit).strip(" ")
    return label or ("␣" if piece else "∅")


def cost_summary(attr: Attribution) -> list[tuple[str, str]]:
    """(label, value) pairs describing how the result was computed, for every view."""
    run, cost = attr.record.provenance, attr.record.cost
    family = run.family
    items = [("method", f"{attr.method} ({family})" if family else attr.method)]
    granularity = attr.granularity or attr.base_granularity
    if attr.pattern:
        granularity = f"{granularity} /{attr.pattern}/"
    items.append(("granularity", granularity))
    masking = run.params.get("masking")
    if masking and family not in (None, "gradient"):
        items.append(("masking", str(masking)))
    if run.model:
        items.append(("model", str(run.model)))
    items.append(("time", f"{cost.seconds:.2f} s"))
    items.append(("forward passes", str(cost.forward_passes)))
    items.append(("backward passes", str(cost.backward_passes)))
    return items
