"""Objectives for the interaction tests (not a test module): a fake one whose L is a given
function, and a real one on a model that has scored what a search would have scored."""

from __future__ import annotations

from collections.abc import Callable

from promptxray.methods.joint_objective import BudgetSpent, Objective
from promptxray.model import LanguageModel
from promptxray.segments import Unit
from promptxray.targets import Problem

Units = frozenset[int]


class FakeObjective:
    """L(S) = `value(S)`, with the Objective's bookkeeping: known sets, prompts spent, and a
    budget a call may not exceed (BudgetSpent, nothing scored). `calls` logs each call."""

    def __init__(self, value: Callable[[Units], float], budget: int | None = None) -> None:
        self.value = value
        self.known: dict[Units, float] = {}
        self.spent = 0
        self.budget = budget
        self.calls: list[list[Units]] = []

    def __call__(self, sets: list[Units], reference: Units | None = None) -> list[float]:
        new = [s for s in dict.fromkeys(sets) if s not in self.known]
        if self.budget is not None and self.spent + len(new) > self.budget:
            raise BudgetSpent
        self.calls.append(new)
        for s in new:
            self.known[s] = self.value(s)
        self.spent += len(new)
        return [self.known[s] for s in sets]


def searched_objective(
    lm: LanguageModel, problem: Problem, units: list[Unit], budget: int | None = None
) -> Objective:
    """A real Objective that has scored what xprompt's search scores first: the unmasked
    prompt, every unit alone (leave-one-out), then the best single with every other unit
    (greedy's second round)."""
    objective = Objective(lm, problem, units, "delete", batch_size=8, k=2, budget=budget)
    empty: Units = frozenset()
    objective([empty])
    singles = [frozenset({u}) for u in range(len(units))]
    values = objective(singles, reference=empty)
    best = min(range(len(units)), key=lambda u: values[u])
    first = frozenset({best})
    objective([first | {u} for u in range(len(units)) if u != best], reference=first)
    return objective
