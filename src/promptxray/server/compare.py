"""Differences: word diffs of texts, and two runs or explanations side by side.

The mask card shows what changed when units were removed, and the compare view
what changed between two runs (e.g. before and after an edit of the prompt). A
word-level diff reads better than characters (one swapped word is one change);
the "equal" and "insert" pieces join to the new text exactly, whitespace included.
For two explanations, units present in both are paired so the change in their
score can be listed, and both are coloured on one shared scale.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from ..attribution import Attribution
from ..render.palette import Scale, css, scale_for, text_color

_WORDS = re.compile(r"\s*\S+|\s+")


def words(text: str) -> list[str]:
    """Split into words that carry their leading whitespace; "".join(words(t)) == t."""
    return _WORDS.findall(text)


def word_diff(before: str, after: str) -> list[dict[str, str]]:
    """Edit script from `before` to `after` as pieces {op: equal|delete|insert, text}.

    Words are compared without their leading whitespace, so a word that only
    moved from one line to the next still counts as kept.
    """
    a, b = words(before), words(after)
    matcher = difflib.SequenceMatcher(
        a=[w.strip() for w in a], b=[w.strip() for w in b], autojunk=False
    )
    pieces: list[dict[str, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append(pieces, "equal", "".join(b[j1:j2]))
            continue
        if tag in ("delete", "replace"):
            _append(pieces, "delete", "".join(a[i1:i2]))
        if tag in ("insert", "replace"):
            _append(pieces, "insert", "".join(b[j1:j2]))
    return pieces


def _append(pieces: list[dict[str, str]], op: str, text: str) -> None:
    if not text:
        return
    if pieces and pieces[-1]["op"] == op:
        pieces[-1]["text"] += text
    else:
        pieces.append({"op": op, "text": text})


# ----- two runs or explanations side by side ------------------------------------------------
def match_units(a: Attribution, b: Attribution) -> list[tuple[int, int]]:
    """Pairs (index in a, index in b) of units present in both: same role, same words.

    Units are aligned in order within each role (a difflib match over their
    texts), so a word that appears twice is paired with its own occurrence, and
    an edit between the two prompts leaves the units around it paired.
    """
    pairs: list[tuple[int, int]] = []
    for role in ("system", "user", "output"):
        left = [i for i, u in enumerate(a.units) if u.role == role]
        right = [i for i, u in enumerate(b.units) if u.role == role]
        matcher = difflib.SequenceMatcher(
            a=[a.units[i].text.strip() for i in left],
            b=[b.units[i].text.strip() for i in right],
            autojunk=False,
        )
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                pairs.append((left[block.a + k], right[block.b + k]))
    return pairs


def shared_scale(a: Attribution, b: Attribution, gamma: float) -> Scale | None:
    """One scale for both pictures (one peak), or None when their scores are not alike.

    A signed and an unsigned method measure different things; putting them on
    one scale would make their colours look comparable when they are not.
    """
    if a.signed != b.signed:
        return None
    return scale_for([*a.scores, *b.scores], signed=a.signed, gamma=gamma)


def score_changes(a: Attribution, b: Attribution) -> list[dict[str, Any]]:
    """For every unit present in both, its score in each and the change, largest first.

    Each change carries its colour on a signed scale of the changes (red: the
    unit matters more in b), computed here like every other colour the page shows.
    """
    pairs = match_units(a, b)
    deltas = [b.scores[j] - a.scores[i] for i, j in pairs]
    scale = scale_for(deltas, signed=True)
    rows = []
    for (i, j), delta in zip(pairs, deltas, strict=True):
        background = scale.color(delta)
        rows.append(
            {
                "text": a.units[i].text,
                "role": a.units[i].role,
                "a_index": i,
                "b_index": j,
                "a_score": float(a.scores[i]),
                "b_score": float(b.scores[j]),
                "delta": float(delta),
                "color": css(background),
                "text_color": css(text_color(background)),
            }
        )
    rows.sort(key=lambda row: -abs(row["delta"]))
    return rows


def text_diffs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Word diffs of the two runs' prompts, system prompts and outputs."""
    return {
        "system_prompt": word_diff(a.get("system_prompt") or "", b.get("system_prompt") or ""),
        "prompt": word_diff(a["prompt"], b["prompt"]),
        "output": word_diff(a["output"], b["output"]),
    }
