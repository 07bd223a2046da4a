"""Pairwise interactions of units, from the sets a joint search scored.

A joint search scores many unit sets S and remembers L(S), the target's
log-probability with the units of S masked. With drop(S) = L(∅) − L(S) (positive:
removing S lowers p(target)), the interaction of units a and b is

    I(a, b) = drop({a, b}) − drop({a}) − drop({b}).

I > 0: removing both lowers p(target) more than the two removals add up to; each
alone changes little (an instruction written twice: either copy keeps it). I < 0:
removing either one already does most of what removing both does; each is needed
(the two parts of a condition), or the two cancel (a double negation). I = 0: the
two add up. Only a method that masks units *together* can see this.

The search already holds many of the terms for free: L(∅) always, every single when
it afforded leave-one-out, the pairs its greedy rounds and the ranking of a 3-set
scored. `measure_interactions` computes I for every pair of candidate units whose
three terms are known and, when asked, scores up to `extra_passes` missing sets
first: the cheapest pairs to complete, ties to the pairs of the highest-ranked
candidates. Those passes are *outside* the search's budget (the budget bounds what
the search may spend, and asking for interactions never changes the explanation);
they are reported in `Interactions.extra_passes`, not in `Search.spent`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Protocol

from ..masking import mask_context
from ..model import LanguageModel
from ..record import Interaction, Interactions
from ..segments import Unit
from ..targets import Problem
from . import quantity
from .base import Cost

Units = frozenset[int]

# The units whose pairs are considered by default: the joint set and the strongest
# others, at least this many (6 units: 15 pairs, at most 21 sets to complete them all).
CANDIDATES = 6
# The strongest interactions of each sign a result keeps.
KEEP = 3

EMPTY: Units = frozenset()


class ScoredSets(Protocol):
    """What the interactions need of a joint method's objective (`Objective` has it):
    L of the sets known so far, the prompts scored, an optional budget, and a scorer."""

    known: dict[Units, float]
    spent: int
    budget: int | None

    def __call__(self, sets: list[Units], reference: Units | None = None) -> list[float]: ...


def pair_interaction(known: dict[Units, float], a: int, b: int) -> Interaction | None:
    """I(a, b) from known L values, or None while one of its four sets is unscored."""
    sets = (EMPTY, frozenset({a}), frozenset({b}), frozenset({a, b}))
    if any(s not in known for s in sets):
        return None
    full, alone_a, alone_b, both = (known[s] for s in sets)
    drops = [full - alone_a, full - alone_b]
    pair_drop = full - both
    first, second = sorted((a, b))
    if first != a:
        drops.reverse()
    return Interaction([first, second], pair_drop, drops, pair_drop - drops[0] - drops[1])


def _pairs(candidates: list[int]) -> list[tuple[int, int]]:
    """Pairs of candidates, those of the highest-ranked first (by the sum of their ranks)."""
    ranked = itertools.combinations(range(len(candidates)), 2)
    return [(candidates[i], candidates[j]) for i, j in sorted(ranked, key=lambda p: (sum(p), p))]


def plan_extra(known: Iterable[Units], candidates: list[int], allowance: int) -> list[Units]:
    """The unscored sets, at most `allowance`, that complete the most informative pairs.

    Greedy: the pair with the fewest missing sets goes next (a single pass often
    completes a pair whose other terms the search scored), ties to the pair of the
    higher-ranked candidates; a pair that no longer fits is skipped. L(∅) comes first
    when unknown, and is not scored alone if no pair could be completed with it.
    """
    have = set(known)
    planned: list[Units] = []
    if EMPTY not in have:
        planned.append(EMPTY)
        have.add(EMPTY)
    open_pairs = _pairs(candidates)
    while True:
        best: tuple[int, list[Units]] | None = None
        for a, b in open_pairs:
            need = [s for s in (frozenset({a}), frozenset({b}), frozenset({a, b})) if s not in have]
            if (
                need
                and len(planned) + len(need) <= allowance
                and (best is None or len(need) < best[0])
            ):
                best = (len(need), need)
                if len(need) == 1:
                    break  # pairs come in rank order: no cheaper or better-ranked one follows
        if best is None:
            break
        planned += best[1]
        have.update(best[1])
    if planned == [EMPTY] or len(planned) > allowance:
        return []
    return planned


def strongest(found: list[Interaction], keep: int = KEEP) -> list[Interaction]:
    """The `keep` strongest of each sign, strongest |I| first (ties: reading order)."""
    positive = sorted((i for i in found if i.value > 0), key=lambda i: (-i.value, i.units))
    negative = sorted((i for i in found if i.value < 0), key=lambda i: (i.value, i.units))
    kept = positive[:keep] + negative[:keep]
    return sorted(kept, key=lambda i: (-abs(i.value), i.units))


def measure_interactions(
    objective: ScoredSets, candidates: list[int], extra_passes: int, keep: int = KEEP
) -> Interactions:
    """I for every pair of `candidates` whose terms are known after at most `extra_passes`
    new scorings (none when 0: only the sets already scored are used), the `keep`
    strongest of each sign kept. The new scorings do not count against the objective's
    budget, which is restored afterwards."""
    candidates = list(dict.fromkeys(candidates))
    scored_before = set(objective.known)
    new = plan_extra(scored_before, candidates, max(0, extra_passes))
    spent_before = objective.spent
    if new:
        _score_beyond_budget(objective, new)
    found, from_scored = [], 0
    for a, b in _pairs(candidates):
        interaction = pair_interaction(objective.known, a, b)
        if interaction is None:
            continue
        found.append(interaction)
        terms = (EMPTY, frozenset({a}), frozenset({b}), frozenset({a, b}))
        from_scored += all(s in scored_before for s in terms)
    return Interactions(
        pairs=strongest(found, keep),
        extra_passes=objective.spent - spent_before,
        candidates=candidates,
        from_scored=from_scored,
        measured=len(found),
    )


def _score_beyond_budget(objective: ScoredSets, sets: list[Units]) -> None:
    """Score `sets` with the budget raised by exactly their number, then restore it."""
    budget = objective.budget
    if budget is not None:
        objective.budget = max(budget, objective.spent + len(sets))
    try:
        objective(sets, reference=EMPTY)
    finally:
        objective.budget = budget


def top_candidates(selected: list[int], scores: list[float], size: int = CANDIDATES) -> list[int]:
    """The joint set in its own order, then the other units by |score| (ties: reading
    order), `size` in all (at least the whole set)."""
    chosen = list(dict.fromkeys(selected))
    others = sorted(
        (u for u in range(len(scores)) if u not in chosen), key=lambda u: (-abs(scores[u]), u)
    )
    return (chosen + others)[: max(size, len(chosen))]


def interactions_after_search(
    objective: ScoredSets, selected: list[int], scores: list[float], extra_passes: int
) -> Interactions:
    """A joint result's interactions: among `top_candidates`, with at most
    min(extra_passes, n) new scorings (n = the number of units)."""
    extra = min(max(0, extra_passes), len(scores))
    return measure_interactions(objective, top_candidates(selected, scores), extra)


def interactions_cost(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    masking: str,
    batch_size: int,
    extra_passes: int,
) -> Cost:
    """An upper bound on `interactions_after_search`'s passes: min(extra_passes, n)
    prompts, priced as that many single-unit maskings scored against the unmasked prompt."""
    extra = min(max(0, extra_passes), len(units))
    if extra == 0:
        return Cost(0, 0, 0, 0)
    variants = [mask_context(lm, problem, units, [i], masking) for i in range(extra)]
    reference = mask_context(lm, problem, units, [], masking)
    return quantity.rows_cost(lm, problem, variants, batch_size, reference).bound()
