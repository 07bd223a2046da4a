"""Pairwise interactions as every view shows them: unit texts resolved, one wording.

A joint method records `record.Interactions` over unit indices; `Attribution.interactions`
turns them into these, so the console, the HTML view and the page say the same words
and none of them needs to know how the numbers were measured.

The sign convention (see `record.Interaction`): I = drop(a and b) − drop(a) − drop(b),
drops in nats of log p(target). I < 0 reads "needed together": removing either one
already does most of what removing both does, so the output needs both (a two-part
condition). I > 0 reads "either suffices": each alone changes little and only removing
both does much, so either one is enough for the output (an instruction written twice).
"""

from __future__ import annotations

from dataclasses import dataclass

from .record import Interactions


def nats(value: float) -> str:
    """A signed value in nats: two decimals, or two significant digits below 0.01."""
    return f"{value:+.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:+.1e}"


# The words for each sign, in one place.
TOGETHER = "needed together"
EITHER = "either suffices"


@dataclass(frozen=True)
class UnitPair:
    """One interaction at the shown units: which two, their texts, and the numbers (nats)."""

    units: tuple[int, int]
    texts: tuple[str, str]
    value: float  # I = pair_drop − drops[0] − drops[1]
    pair_drop: float
    drops: tuple[float, float]

    @property
    def together(self) -> bool:
        """True for I < 0 (removing either one already breaks it: both are needed), False
        for I > 0 (only removing both does much: either one suffices)."""
        return self.value < 0

    @property
    def label(self) -> str:
        return TOGETHER if self.together else EITHER

    def names(self) -> tuple[str, str]:
        """The two texts quoted; the same words twice are told apart by their unit."""
        a, b = (repr(t.strip() or t) for t in self.texts)
        if a == b:
            return f"{a} (unit {self.units[0]})", f"{b} (unit {self.units[1]})"
        return a, b

    def line(self) -> str:
        """ "needed together: 'if' + 'and' (-2.31 nats below their sum)" or
        "either suffices: 'Be brief' / 'Be brief' (+3.10 nats beyond their sum)"."""
        a, b = self.names()
        if self.together:
            return f"{self.label}: {a} + {b} ({nats(self.value)} nats below their sum)"
        return f"{self.label}: {a} / {b} ({nats(self.value)} nats beyond their sum)"

    def detail(self) -> str:
        """The three drops the value comes from."""
        return (
            f"removing both lowers log p(target) by {self.pair_drop:.2f}; each alone by "
            f"{self.drops[0]:.2f} and {self.drops[1]:.2f}"
        )


@dataclass(frozen=True)
class PairsView:
    """A result's strongest interactions, strongest first, and where they came from."""

    pairs: list[UnitPair]
    candidates: int
    measured: int
    from_scored: int
    extra_passes: int

    def note(self) -> str:
        """ "interactions among the top 6 units: 12 of 15 pairs measured (9 from the
        search's own sets, 3 extra passes)"."""
        total = self.candidates * (self.candidates - 1) // 2
        n = self.extra_passes
        passes = {0: "no extra pass", 1: "1 extra pass"}.get(n, f"{n} extra passes")
        return (
            f"interactions among the top {self.candidates} units: {self.measured} of {total} "
            f"pairs measured ({self.from_scored} from the search's own sets, {passes})"
        )

    def partners(self) -> dict[int, list[int]]:
        """Each unit in a shown pair, and the units it interacts with."""
        out: dict[int, list[int]] = {}
        for pair in self.pairs:
            a, b = pair.units
            out.setdefault(a, []).append(b)
            out.setdefault(b, []).append(a)
        return out


def pairs_view(found: Interactions, texts: list[str]) -> PairsView:
    """`found` with each unit's text; pairs naming a unit outside `texts` are left out."""
    pairs = [
        UnitPair(
            units=(p.units[0], p.units[1]),
            texts=(texts[p.units[0]], texts[p.units[1]]),
            value=p.value,
            pair_drop=p.pair_drop,
            drops=(p.drops[0], p.drops[1]),
        )
        for p in found.pairs
        if all(0 <= u < len(texts) for u in p.units)
    ]
    return PairsView(
        pairs, len(found.candidates), found.measured, found.from_scored, found.extra_passes
    )
