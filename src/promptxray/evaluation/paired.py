"""Paired comparisons of two methods on one metric: A − B over the prompts both have.

Unpaired intervals overlap even when one method beats another on almost every
prompt; the paired interval (a percentile bootstrap of the per-prompt differences,
`intervals.mean_interval`) and the win/tie/loss counts say whether A and B really
differ. The results table (`table.py`) holds one per (A, B, metric).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidParameterError
from ..intervals import mean_interval

TIE = 1e-9  # |A − B| at or below this is a tie: float noise is not a win
PAIRED_RESAMPLES = 2000


@dataclass(frozen=True)
class PairedComparison:
    """A − B on one metric over the prompts both have, with a paired interval and W/T/L.

    Pairing removes the prompt-to-prompt spread that both methods share, so the
    interval says whether A and B differ even when their unpaired cells overlap.
    `low`/`high` are None with fewer than two pairs; wins/ties/losses are A's.
    """

    n: int
    mean: float | None
    low: float | None
    high: float | None
    wins: int
    ties: int
    losses: int

    def as_text(self, digits: int = 3) -> str:
        if self.mean is None:
            return "–"
        interval = (
            f" [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"
            if self.low is not None and self.high is not None
            else " [–]"
        )
        return f"{self.mean:+.{digits}f}{interval} {self.wins}/{self.ties}/{self.losses}"

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies strictly on one side of 0 (A and B really differ)."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def paired_comparison(
    a_values: Sequence[float | None],
    b_values: Sequence[float | None],
    direction: str,
    seed: int = 0,
    n_resamples: int = PAIRED_RESAMPLES,
    level: float = 0.95,
) -> PairedComparison:
    """Mean of a − b over positions where both are finite, paired bootstrap interval, W/T/L.

    `a_values[i]` and `b_values[i]` must be the same prompt. `direction` is "↓"
    (lower is more faithful) or "↑"; a win is A more faithful than B by more than
    1e-9. The interval is the percentile bootstrap of the mean difference
    (`scipy.stats.bootstrap` on the differences, which is the paired bootstrap of
    mean(A) − mean(B)), from `numpy.random.default_rng(seed)`, so it is the same
    for the same values. Fewer than two pairs: no interval; a constant difference
    d: exactly [d, d] (every resample has mean d).
    """
    if direction not in ("↓", "↑"):
        raise InvalidParameterError(
            f'direction must be "↓" or "↑", not {direction!r}.', param="direction"
        )
    pairs = [
        (float(a), float(b))
        for a, b in zip(a_values, b_values, strict=True)
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
    ]
    if not pairs:
        return PairedComparison(0, None, None, None, 0, 0, 0)
    diffs = np.array([a - b for a, b in pairs])
    better = -diffs if direction == "↓" else diffs
    wins, losses = int((better > TIE).sum()), int((better < -TIE).sum())
    ties = len(diffs) - wins - losses
    mean, low, high = mean_interval(diffs, n_resamples=n_resamples, seed=seed, level=level)
    return PairedComparison(len(diffs), mean, low, high, wins, ties, losses)
