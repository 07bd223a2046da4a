"""Random half-ablations of a prompt's units and the linear-datamodelling score (LDS) over them.

Two parts of the tool ask "does a linear reading of these scores predict what removing
random halves of the prompt does?": the faithfulness check every result carries (its
agreement measurement) and the `context_cite` method (which fits its scores to such
ablations and reports how well the fit predicts ones it did not see). Both draw their
ablations here and score the agreement here, so the two numbers mean the same thing.

The generator is seeded by a caller-chosen key (token ids), the units and a label, never
by a method: the same prompt gets the same ablations whichever method is judged, and two
labels (the check's "lds", context_cite's own) give independent draws, so the check's
ablations stay held out from what context_cite fitted.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from scipy.stats import spearmanr

from .segments import Unit


def seeded(key: Sequence[int], units: Sequence[Unit], seed: int, what: str) -> random.Random:
    """A generator seeded by `key` (token ids), the units' tokens, the seed and a label."""
    text = f"{seed}|{what}|{list(key)}|{[u.tokens for u in units]}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(text).digest()[:8], "big"))


def half_ablations(rng: random.Random, n: int, count: int) -> list[list[int]]:
    """`count` random half-ablations of `n` units (n >= 2): each unit dropped with
    probability ½, none empty or whole; the dropped indices of each."""
    if n < 2 and count > 0:  # no ablation is neither empty nor whole: never stop drawing
        raise ValueError("half-ablations need at least two units")
    found: list[list[int]] = []
    while len(found) < count:
        dropped = [i for i in range(n) if rng.random() < 0.5]
        if 0 < len(dropped) < n:
            found.append(dropped)
    return found


def rank_agreement(predicted: Sequence[float], actual: Sequence[float]) -> float | None:
    """Spearman(predicted, actual); None when either side is constant (no ranking)."""
    if len(set(predicted)) < 2 or len(set(actual)) < 2:
        return None
    return float(spearmanr(predicted, actual).statistic)


def lds(
    scores: Sequence[float], ablations: list[list[int]], drops: Sequence[float]
) -> float | None:
    """The LDS of additive scores: Spearman(sum of the dropped units' scores, the drop in
    the target's log-probability each ablation caused)."""
    predicted = [sum(scores[i] for i in dropped) for dropped in ablations]
    return rank_agreement(predicted, drops)
