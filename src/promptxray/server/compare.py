"""Word diff between the original output and the one regenerated from a masked prompt.

The page shows what changed when units were removed; a word-level diff reads
better than characters (one swapped word is one change). The "equal" and
"insert" pieces join to the new text exactly, whitespace included.
"""

from __future__ import annotations

import difflib
import re

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
