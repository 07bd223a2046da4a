"""What a method is: a function from (model, problem, units) to scores over those units.

Adding a method is writing one function and registering it; the API, CLI, web UI
and evaluation find it by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import UnknownMethodError
from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem

ProgressFn = Callable[[int, int], None]


@dataclass
class MethodOutput:
    """Scores over the units the method was given (same order)."""

    scores: list[float]
    matrix: list[list[float]] | None = None
    selected: list[int] | None = None
    template_scores: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class MethodFn(Protocol):
    def __call__(
        self, lm: LanguageModel, problem: Problem, units: list[Unit], **params: Any
    ) -> MethodOutput: ...


@dataclass(frozen=True)
class MethodSpec:
    """`token_level`: the method scores tokens and units are sums (any view works later);
    otherwise it masks whole units and its result is fixed at that granularity."""

    name: str
    family: str
    fn: MethodFn
    token_level: bool
    description: str


REGISTRY: dict[str, MethodSpec] = {}


def register(name: str, family: str, token_level: bool, description: str):
    def wrap(fn: MethodFn) -> MethodFn:
        REGISTRY[name] = MethodSpec(name, family, fn, token_level, description)
        return fn

    return wrap


def get_method(name: str) -> MethodSpec:
    if name not in REGISTRY:
        raise UnknownMethodError(
            f"Unknown method {name!r}; choose one of {', '.join(sorted(REGISTRY))}."
        )
    return REGISTRY[name]


def sum_into_units(token_scores: list[float], units: list[Unit]) -> list[float]:
    return [float(sum(token_scores[t] for t in u.tokens)) for u in units]
