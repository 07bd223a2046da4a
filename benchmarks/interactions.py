"""Do interactions find a constructed pair? Prompts with a known pair, on the default model.

Each case is a prompt with a supplied answer y and two word units built to interact:

- `duplicated`: the same instruction written twice. Either copy keeps it, so removing
  one changes little and removing both a lot: I = drop(both) − drop(a) − drop(b) > 0
  ("matter together").
- `condition`: an answer that needs both parts of a condition. Removing either part
  already loses it: I < 0 ("removing either suffices").
- `negation`: a double negation. Removing either "not" flips the statement, removing
  both restores it: I < 0.

For each case it reports, with L(S) = log p(y | prompt without the units of S) and
`delete` masking at word units:

- *every pair* (the reference): L of ∅, of every unit and of every pair of units
  (1 + n + C(n, 2) prompts); the rank of the constructed pair among all pairs by |I|,
  its I, and the strongest pair overall;
- *from a search*: what a result would show, via xprompt with k = 2 and `interactions`
  = n extra passes when the installed xprompt has that parameter; otherwise a stand-in:
  xprompt's k = 2 set, with L of ∅, of every single and of that set known (a part of
  what the search scored), measured with at most n extra passes among the set and the
  strongest other units (`interactions_after_search`). Both from the default search
  and from the exhaustive optimum's set (what a search that finds the optimum shows).

A pass is one masked prompt scored. Run (one to two minutes a case on one CPU thread):
  .venv/bin/python benchmarks/interactions.py [--case duplicated]
"""

from __future__ import annotations

import argparse
import itertools
import string
import time

import torch

from promptxray import attribute, build_problem, load_model
from promptxray.methods.joint_interactions import (
    interactions_after_search,
    measure_interactions,
)
from promptxray.methods.joint_objective import Objective
from promptxray.methods.joint_search import XPromptParams
from promptxray.record import Interactions

# (name, prompt, supplied answer, the two words built to interact, the sign expected)
CASES = [
    (
        "duplicated",
        "Answer in French. What is the capital of Italy? Answer in French.",
        " La capitale de l'Italie est Rome.",
        ("French", "French"),
        +1,
    ),
    (
        "condition",
        "If it is raining and it is cold, say stay; otherwise say go. "
        "It is raining. It is cold. What do you say?",
        " Stay.",
        ("raining", "cold"),
        -1,
    ),
    (
        "negation",
        "It is not true that the door is not open. Is the door open? Answer yes or no.",
        " Yes.",
        ("not", "not"),
        -1,
    ),
]


def bare(text: str) -> str:
    return text.strip().strip(string.punctuation)


def constructed(units: list, words: tuple[str, str]) -> list[int]:
    """The units of the two words: for a word written twice, its first two occurrences;
    for two words, the last occurrence of each (the facts, after the rule)."""
    hits = [
        [i for i, u in enumerate(units) if u.role == "user" and bare(u.text) == w] for w in words
    ]
    if words[0] == words[1]:
        return hits[0][:2]
    return [hits[0][-1], hits[1][-1]]


def every_pair(lm, problem, units) -> Interactions:
    """The reference: every single and every pair scored, every pair's I."""
    objective = Objective(lm, problem, units, "delete", batch_size=16, k=2)
    objective([frozenset()])
    objective([frozenset({u}) for u in range(len(units))], reference=frozenset())
    pairs = [frozenset(p) for p in itertools.combinations(range(len(units)), 2)]
    objective(pairs, reference=frozenset())
    return measure_interactions(objective, list(range(len(units))), 0, keep=len(pairs))


def from_search(lm, problem, units, **params) -> tuple[Interactions | None, str]:
    """What a result shows: the method's own interactions, or the stand-in (see the top)."""
    n = len(units)
    if "interactions" in XPromptParams.model_fields:
        attr = attribute(lm, problem, "xprompt", "word", k=2, interactions=n, **params)
        return attr.record.interactions, f"xprompt k=2 {params}, interactions={n}"
    attr = attribute(lm, problem, "xprompt", "word", k=2, **params)
    objective = Objective(lm, problem, units, "delete", batch_size=16, k=2)
    objective([frozenset()])
    objective([frozenset({u}) for u in range(n)], reference=frozenset())
    objective([frozenset(attr.selected)])
    found = interactions_after_search(objective, attr.selected, attr.base_scores, n)
    drop = attr.record.search.log_prob_drop
    return found, f"xprompt k=2 {params} set {sorted(attr.selected)} (drop {drop:.2f}), stand-in"


def describe(pair, texts: list[str]) -> str:
    a, b = pair.units
    return f"{texts[a].strip()!r}#{a} / {texts[b].strip()!r}#{b} I = {pair.value:+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--case", choices=[c[0] for c in CASES], help="only this case")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model()
    for name, prompt, answer, words, sign in CASES:
        if args.case and name != args.case:
            continue
        started = time.perf_counter()
        problem = build_problem(lm, prompt, target=answer)
        units = problem.units("word")
        texts = [u.text for u in units]
        want = sorted(constructed(units, words))
        reference = every_pair(lm, problem, units)
        ranked = reference.pairs
        rank = next(i for i, p in enumerate(ranked) if p.units == want)
        mine = ranked[rank]
        print(f"\n== {name}: {len(units)} word units, constructed pair {want} ({words})")
        print(
            f"every pair ({1 + len(units) + len(ranked)} passes): constructed pair rank {rank + 1} "
            f"of {len(ranked)} by |I|, {describe(mine, texts)} (expected sign "
            f"{'+' if sign > 0 else '-'}, drops {mine.drops[0]:+.2f} {mine.drops[1]:+.2f}, "
            f"both {mine.pair_drop:+.2f}); strongest: {describe(ranked[0], texts)}"
        )
        for params in ({}, {"strategy": "exhaustive"}):
            found, how = from_search(lm, problem, units, **params)
            if found is None or not found.pairs:
                print(f"from {how}: no interaction measured")
                continue
            top = found.pairs[0]
            hit = top.units == want and (top.value > 0) == (sign > 0)
            print(
                f"from {how}: {found.extra_passes} extra passes, {found.measured} pairs "
                f"measured; top {describe(top, texts)}; the constructed pair "
                f"{'IS' if hit else 'is NOT'} the top one"
            )
        print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
