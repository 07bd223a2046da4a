"""The one colour scale every view uses: terminal, HTML export, heatmap picture, web page.

Two perceptual colour maps from matplotlib, sampled once into `N_STOPS` RGB stops
(kept here as constants, so the text views need no matplotlib at import):

- **signed** methods (the method says so; the data is not consulted): "RdBu_r",
  red = raises p(target), blue = lowers it, white = no effect, on the domain
  [-peak, +peak] (stop `CENTER` is zero);
- **unsigned** methods: "Oranges", darker = stronger, on [0, peak].

`peak` is the largest |value| drawn in that picture (the unit scores for the text
and the lists, the matrix cells for the heatmap), never a fixed constant: methods
disagree by orders of magnitude. A peak of 0 draws everything neutral (white).

The rule from a value to a colour is the one matplotlib's `ListedColormap` uses,
so the heatmap needs no rule of its own: the domain is cut into `N_STOPS` equal
bins and a value takes the stop of its bin,
``index = clamp(floor((value - lo) / (hi - lo) * N_STOPS), 0, N_STOPS - 1)``.
The page repeats none of it: the server sends each unit's colour and each heatmap
cell's stop index; `N_STOPS` is odd, so zero sits in the middle of the centre bin.
The stop that stands for zero is pinned to pure white (matplotlib's is a
near-white grey or cream), so a unit without influence looks like plain text.

Two reading aids act before the bin rule, in `Scale.index` only (every view that
colours through a `Scale` gets them; the page gets its colours from the server):
values within `floor` (default `NEAR_ZERO`, 2 %) of the peak draw neutral, so a
prompt full of negligible scores does not look faintly tinted all over; and
`gamma` bends |value| / peak before binning (below 1 brings out weak units, above
1 keeps only the strong ones), which the page's intensity slider sets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

RGB = tuple[int, int, int]

WHITE: RGB = (255, 255, 255)
TARGET: RGB = (253, 224, 71)  # yellow: the explained text in the output (not a score)

SIGNED_CMAP = "RdBu_r"  # the matplotlib maps the stops were sampled from
UNSIGNED_CMAP = "Oranges"
N_STOPS = 65
CENTER = N_STOPS // 2  # the signed stop that stands for 0

# matplotlib.colormaps[name](np.linspace(0, 1, 65)), RGB rounded to 0..255; the zero
# stop (index CENTER of RdBu_r, index 0 of Oranges) pinned to white.
# tests/test_render.py checks these against matplotlib.
SIGNED_STOPS: tuple[RGB, ...] = (
    (5, 48, 97), (9, 56, 109), (14, 65, 121), (18, 73, 132), (23, 82, 144),
    (27, 90, 156), (31, 99, 168), (36, 106, 174), (42, 113, 178), (47, 121, 181),
    (52, 128, 185), (58, 135, 189), (63, 142, 192), (70, 149, 196), (82, 157, 200),
    (95, 165, 205), (107, 172, 209), (120, 180, 213), (132, 188, 217), (144, 196, 221),
    (155, 201, 224), (165, 206, 227), (174, 211, 230), (184, 216, 233), (194, 221, 236),
    (204, 226, 239), (212, 230, 241), (218, 233, 242), (224, 236, 243), (230, 239, 244),
    (236, 242, 245), (242, 245, 246), WHITE, (248, 242, 239), (249, 238, 231),
    (250, 233, 223), (251, 229, 216), (252, 224, 208), (253, 220, 201), (252, 213, 191),
    (251, 204, 180), (249, 196, 169), (248, 187, 158), (246, 179, 148), (245, 170, 137),
    (242, 161, 127), (238, 150, 119), (233, 139, 110), (228, 128, 102), (223, 118, 94),
    (219, 107, 85), (214, 96, 77), (208, 85, 72), (203, 73, 66), (197, 62, 61),
    (191, 51, 56), (186, 40, 50), (180, 28, 45), (171, 22, 42), (159, 18, 40),
    (147, 14, 38), (135, 10, 36), (124, 7, 34), (112, 3, 32), (103, 0, 31),
)  # fmt: skip
UNSIGNED_STOPS: tuple[RGB, ...] = (
    WHITE, (255, 243, 231), (255, 241, 228), (255, 239, 224), (254, 237, 220),
    (254, 236, 217), (254, 234, 213), (254, 232, 210), (254, 230, 206), (254, 227, 200),
    (254, 224, 195), (254, 222, 189), (253, 219, 184), (253, 216, 178), (253, 213, 173),
    (253, 211, 167), (253, 208, 162), (253, 203, 155), (253, 199, 148), (253, 195, 141),
    (253, 191, 134), (253, 186, 127), (253, 182, 120), (253, 178, 113), (253, 174, 106),
    (253, 169, 101), (253, 165, 95), (253, 161, 89), (253, 157, 83), (253, 153, 77),
    (253, 149, 71), (253, 145, 65), (253, 140, 59), (251, 136, 54), (250, 131, 49),
    (248, 127, 44), (247, 122, 39), (245, 118, 34), (244, 113, 28), (242, 109, 23),
    (241, 104, 19), (238, 100, 16), (235, 96, 14), (231, 92, 12), (228, 88, 10),
    (225, 84, 7), (222, 80, 5), (219, 75, 3), (216, 72, 1), (209, 69, 1),
    (203, 67, 2), (197, 65, 2), (190, 63, 2), (184, 60, 2), (177, 58, 3),
    (171, 56, 3), (165, 54, 3), (160, 52, 3), (155, 50, 3), (150, 48, 3),
    (145, 46, 4), (140, 44, 4), (136, 42, 4), (131, 40, 4), (127, 39, 4),
)  # fmt: skip

# What the colours mean: the one wording of every legend (terminal, HTML, heatmap, page).
SIGNED_LEGEND = "red raises p(target), blue lowers it"
UNSIGNED_LEGEND = "darker = stronger influence (unsigned)"

# |value| / peak below this draws neutral (no tint): near-zero units read as plain text.
NEAR_ZERO = 0.02
GAMMA_RANGE = (0.2, 5.0)  # the intensity control's limits


def legend_text(signed: bool) -> str:
    return SIGNED_LEGEND if signed else UNSIGNED_LEGEND


def stops_for(signed: bool) -> tuple[RGB, ...]:
    return SIGNED_STOPS if signed else UNSIGNED_STOPS


@dataclass(frozen=True)
class Scale:
    """Values -> colours for one picture: the method's signedness and the picture's peak."""

    signed: bool
    peak: float
    gamma: float = 1.0
    floor: float = NEAR_ZERO

    @property
    def domain(self) -> tuple[float, float]:
        """[-peak, +peak] for signed results, [0, peak] for unsigned ones."""
        return (-self.peak if self.signed else 0.0, self.peak)

    @property
    def stops(self) -> tuple[RGB, ...]:
        return stops_for(self.signed)

    def tinted(self, score: float) -> bool:
        """Whether `score` gets any colour: not when it is within `floor` of zero."""
        if not self.peak > 0 or not math.isfinite(score):
            return False
        return abs(score) / self.peak >= self.floor and self.index(score) != self._neutral()

    def _neutral(self) -> int:
        return CENTER if self.signed else 0

    def index(self, score: float) -> int:
        """The stop drawn for `score` (its bin in the domain); the neutral stop if peak is 0.

        Near-zero values (|score| < floor x peak) take the neutral stop; `gamma`
        reshapes |score| / peak before the bin rule (1 leaves it as it is).
        """
        if not self.peak > 0 or not math.isfinite(score):
            return self._neutral()
        if abs(score) < self.floor * self.peak:
            return self._neutral()
        if self.gamma != 1.0:
            bent = min(abs(score) / self.peak, 1.0) ** self.gamma
            score = math.copysign(bent * self.peak, score)
        lo, hi = self.domain
        position = (score - lo) / (hi - lo) * N_STOPS
        return max(0, min(N_STOPS - 1, math.floor(position)))

    def color(self, score: float) -> RGB:
        return self.stops[self.index(score)]

    def strength(self, score: float) -> float:
        """score / peak, clipped to the domain: in [-1, 1] (signed) or [0, 1] (unsigned)."""
        if not self.peak > 0 or not math.isfinite(score):
            return 0.0
        return max(-1.0 if self.signed else 0.0, min(1.0, score / self.peak))

    def peak_label(self) -> str:
        """The peak as every legend prints it (3 significant digits)."""
        return f"{self.peak:.3g}"

    def peak_text(self) -> str:
        if not self.peak > 0:
            return "all values are 0"
        return f"full colour at {'±' if self.signed else ''}{self.peak_label()}"

    def caption(self) -> str:
        """The legend line every view prints: what the colours mean, and the peak."""
        return f"{legend_text(self.signed)} · {self.peak_text()}"


def scale_for(values: Iterable[float], signed: bool, gamma: float = 1.0) -> Scale:
    """The scale of one picture; `signed` comes from the method (`attr.signed`), not the data.

    Give the values of every picture that must share a scale (e.g. two runs compared
    side by side) in one call, so one peak colours them all.
    """
    peak = max((abs(float(v)) for v in values if math.isfinite(v)), default=0.0)
    low, high = GAMMA_RANGE
    return Scale(signed=bool(signed), peak=float(peak), gamma=min(high, max(low, float(gamma))))


def css(color: RGB) -> str:
    """`rgb(r, g, b)`, spelt as browsers report `getComputedStyle(...).backgroundColor`."""
    return f"rgb({color[0]}, {color[1]}, {color[2]})"


def text_color(background: RGB) -> RGB:
    """Black or white, whichever reads better on `background` (relative luminance)."""
    r, g, b = (c / 255 for c in background)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return (0, 0, 0) if luminance > 0.45 else (255, 255, 255)


def palette_payload(scale: Scale) -> dict[str, Any]:
    """What the page needs to draw with this scale, by the same rule as `Scale.index`."""
    return {
        "signed": scale.signed,
        "peak": scale.peak,
        "peak_label": scale.peak_label(),
        "stops": [css(s) for s in scale.stops],
        "legend": legend_text(scale.signed),
        "caption": scale.caption(),
        "gamma": scale.gamma,
        "floor": scale.floor,
    }
