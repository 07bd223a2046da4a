"""One colour scale for every view, so a unit looks the same in the terminal and the page.

Scores are scaled by the largest magnitude shown (the *peak*), never by a fixed
constant: methods disagree by orders of magnitude, and what a reader needs is
which units matter relative to the others. A result is drawn as signed (two
colours) exactly when it holds a negative score; unsigned methods such as
grad_norm never do, and get a single colour for magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RGB = tuple[int, int, int]

POSITIVE: RGB = (37, 99, 235)  # blue: raises p(target)
NEGATIVE: RGB = (220, 38, 38)  # red: lowers p(target)
MAGNITUDE: RGB = (234, 88, 12)  # orange: unsigned influence
WHITE: RGB = (255, 255, 255)
TARGET: RGB = (253, 224, 71)  # yellow: the explained text in the output

# Matplotlib colour maps that match the palette (RdBu runs red -> white -> blue).
SIGNED_CMAP = "RdBu"
UNSIGNED_CMAP = "Oranges"


@dataclass(frozen=True)
class Scale:
    """How to turn a score into a colour strength in [-1, 1]."""

    signed: bool
    peak: float

    def strength(self, score: float) -> float:
        if self.peak <= 0:
            return 0.0
        value = score / self.peak
        if not self.signed:
            value = abs(value)
        return max(-1.0, min(1.0, value))

    def color(self, score: float) -> RGB:
        return blend(self.strength(score), self.signed)


def scale_for(scores: Sequence[float]) -> Scale:
    """The scale for a set of scores: signed if any is negative, peak = max |score|."""
    signed = any(s < 0 for s in scores)
    peak = max((abs(s) for s in scores), default=0.0)
    return Scale(signed=signed, peak=float(peak))


def blend(strength: float, signed: bool) -> RGB:
    """White at 0, the full colour at |strength| = 1."""
    if signed:
        base = POSITIVE if strength >= 0 else NEGATIVE
    else:
        base = MAGNITUDE
    t = min(1.0, abs(strength))
    return tuple(round(w + (c - w) * t) for w, c in zip(WHITE, base, strict=True))  # type: ignore[return-value]


def text_color(background: RGB) -> RGB:
    """Black or white, whichever reads better on `background` (relative luminance)."""
    r, g, b = (c / 255 for c in background)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return (0, 0, 0) if luminance > 0.45 else (255, 255, 255)


def css(color: RGB) -> str:
    return f"rgb({color[0]},{color[1]},{color[2]})"
