"""What a method is: a function from (model, problem, units) to scores, plus its spec.

A method owns three things nobody else may decide for it:
- its **parameters**, declared as a pydantic model (name, type, default, range, help),
  so the API, CLI, web server and evaluation validate the same way and a result
  records exactly the parameters that were used;
- its **aggregation rule**: how token scores combine into coarser units (a sum for
  additive attributions, the norm of the group's gradient for gradient norms), or
  that they never combine because the method masked whole units;
- whether its scores carry a **sign**, which decides how results are ranked and coloured.

Adding a method is writing one function, one parameter model and registering them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from ..aggregation import Aggregation, combine
from ..errors import InvalidParameterError, UnknownMethodError
from ..model import LanguageModel
from ..record import (
    Completeness,
    Hierarchy,
    Interactions,
    KeptAblations,
    MaskedScores,
    Search,
)
from ..segments import Unit
from ..targets import Problem

ProgressFn = Callable[[int, int], None]


class Family(StrEnum):
    GRADIENT = "gradient"
    PERTURBATION = "perturbation"
    JOINT = "joint"


# Marks a parameter added after results were stored, whose default computes what the
# method computed before: it joins a result's key only when set to something else.
KEYED_WHEN_SET = "keyed_when_set"


class MethodParams(BaseModel):
    """Base of every method's parameter model: unknown names are errors, values are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def check_units(self, n_units: int) -> None:
        """Refuse settings that cannot work on `n_units` units (e.g. k larger than n)."""


@dataclass
class MethodOutput:
    """Scores over the units the method was given (same order).

    `selected` is a joint method's chosen set, in the method's own order of importance.
    The typed sections are what the method records about its run (`record.RunRecord`):
    each method fills the ones it has, and the views read them by name.
    """

    scores: list[float]
    matrix: list[list[float]] | None = None
    selected: list[int] | None = None
    template_scores: list[float] | None = None
    masked: MaskedScores | None = None
    completeness: Completeness | None = None
    hierarchy: Hierarchy | None = None
    search: Search | None = None
    interactions: Interactions | None = None
    kept: KeptAblations | None = None


@dataclass(frozen=True)
class Cost:
    """Model passes a method will make, counted as `LanguageModel.cost` counts them.

    `token_rows` are the token positions its forwards compute (padding included),
    `backward_token_rows` those its backwards go through: what seconds scale with.
    `upper_bound` marks a prediction that is a bound (work that depends on results).
    """

    forward_sequences: int
    forward_calls: int
    backward_calls: int
    token_rows: int
    backward_token_rows: int = 0
    upper_bound: bool = False

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.forward_sequences + other.forward_sequences,
            self.forward_calls + other.forward_calls,
            self.backward_calls + other.backward_calls,
            self.token_rows + other.token_rows,
            self.backward_token_rows + other.backward_token_rows,
            self.upper_bound or other.upper_bound,
        )

    def bound(self) -> Cost:
        """The same numbers, marked as an upper bound."""
        return replace(self, upper_bound=True)


@dataclass(frozen=True)
class UnitMatrix:
    """A method's way to compute its heatmap directly over view units coarser than its
    base units, for when that is cheaper than token rows regrouped (the method decides
    when: `applies`). `compute` returns [target token][unit], or None where the model
    cannot run it (the caller then computes the token-level matrix)."""

    applies: Callable[[Problem, list[Unit], Any], bool]
    compute: Callable[
        [LanguageModel, Problem, list[Unit], Any, ProgressFn | None], list[list[float]] | None
    ]
    cost: Callable[[LanguageModel, Problem, list[Unit], Any], Cost]


UNIT_MATRICES: dict[str, UnitMatrix] = {}

PredictFn = Callable[[LanguageModel, Problem, list[Unit], Any, bool], Cost]
PREDICTORS: dict[str, PredictFn] = {}


def predicts(name: str) -> Callable[[PredictFn], PredictFn]:
    """Register the cost predictor of method `name` (kept next to its algorithm)."""

    def wrap(fn: PredictFn) -> PredictFn:
        PREDICTORS[name] = fn
        return fn

    return wrap


class MethodFn(Protocol):
    def __call__(
        self,
        lm: LanguageModel,
        problem: Problem,
        units: list[Unit],
        params: Any,
        *,
        matrix: bool,
        progress: ProgressFn | None,
    ) -> MethodOutput: ...


@dataclass(frozen=True)
class ParamInfo:
    """One declared parameter, as `promptxray methods`, /api/info and the page show it."""

    name: str
    type: str
    default: Any
    minimum: float | None
    maximum: float | None
    choices: list[str] | None
    help: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> str:
        bounds = ""
        if self.choices:
            bounds = f" one of {'/'.join(self.choices)}"
        elif self.minimum is not None or self.maximum is not None:
            lo = "" if self.minimum is None else f"{self.minimum:g}"
            hi = "" if self.maximum is None else f"{self.maximum:g}"
            bounds = f" in [{lo}, {hi}]" if hi else f" >= {lo}"
        return f"{self.name}={self.default!r} ({self.type}{bounds})"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    family: Family
    fn: MethodFn
    params: type[MethodParams]
    aggregation: Aggregation
    signed: bool
    description: str
    # Raised when the algorithm changes what it returns for the same parameters, so
    # stored results (evaluation rows) of the old algorithm are not reused as new.
    version: int = 1
    # Whether the method scores the unmasked prompt itself and records it (`RunRecord.
    # unmasked_log_prob`): the faithfulness check then reuses it instead of scoring it again,
    # and the cost estimate counts one pass less.
    scores_unmasked: bool = False

    @property
    def regroupable(self) -> bool:
        """Token-level methods can be shown at any coarser granularity without the model."""
        return self.aggregation != Aggregation.FIXED

    @property
    def unit_matrix(self) -> UnitMatrix | None:
        """Its heatmap over coarser view units, where the method has one (`UNIT_MATRICES`)."""
        return UNIT_MATRICES.get(self.name)

    def accepts(self, name: str) -> bool:
        return name in self.params.model_fields

    def predict(
        self,
        lm: LanguageModel,
        problem: Problem,
        units: list[Unit],
        params: MethodParams,
        matrix: bool = False,
    ) -> Cost:
        """The passes running this method will make, before running it (see `costs`)."""
        if self.name not in PREDICTORS:
            raise InvalidParameterError(f"Method {self.name} cannot predict its cost.")
        return PREDICTORS[self.name](lm, problem, units, params, matrix)

    def param_info(self) -> list[ParamInfo]:
        return [_param_info(name, f) for name, f in self.params.model_fields.items()]

    def result_key(self, params: MethodParams) -> dict[str, Any]:
        """What a stored result was computed with: the resolved parameters and, from
        version 2 on, the algorithm version (version 1 is left out, so results stored
        before methods had versions keep their keys). Parameters added later whose
        defaults keep the old behaviour are marked `KEYED_WHEN_SET` and left out while
        all of them hold their defaults, for the same reason."""
        key = params.model_dump(mode="json")
        later = {
            name: info.default
            for name, info in type(params).model_fields.items()
            if isinstance(info.json_schema_extra, dict)
            and info.json_schema_extra.get(KEYED_WHEN_SET)
        }
        if all(getattr(params, name) == default for name, default in later.items()):
            for name in later:
                del key[name]
        if self.version != 1:
            key["version"] = self.version
        return key

    def resolve(self, given: Mapping[str, Any] | MethodParams | None = None) -> MethodParams:
        """The method's parameters with defaults filled in, or one clear error."""
        if isinstance(given, self.params):
            return given
        if isinstance(given, MethodParams):
            given = given.model_dump()
        values = dict(given or {})
        unknown = sorted(k for k in values if not self.accepts(k))
        if unknown:
            takes = ", ".join(p.summary() for p in self.param_info()) or "no parameters"
            names = ", ".join(repr(u) for u in unknown)
            raise InvalidParameterError(
                f"Method {self.name} takes no parameter {names}; it takes: {takes}.",
                param=unknown[0] if len(unknown) == 1 else None,
            )
        try:
            return self.params(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "parameters"
            message = first.get("msg", "invalid value").removeprefix("Value error, ")
            info = {p.name: p for p in self.param_info()}.get(where)
            if info is not None and info.choices:
                message = f"must be one of {', '.join(info.choices)}"
            else:
                message = message[0].lower() + message[1:]
            got = first.get("input")
            raise InvalidParameterError(
                f"{self.name}: {where} {message} (got {got!r}).",
                param=where if info is not None else None,
            ) from None


def _param_info(name: str, f: Any) -> ParamInfo:
    from typing import get_args

    annotation = f.annotation
    choices = [str(a) for a in get_args(annotation)] if _is_literal(annotation) else None
    kind = "choice" if choices else getattr(annotation, "__name__", str(annotation))
    minimum = maximum = None
    for m in f.metadata:
        for attr, is_min in (("ge", True), ("gt", True), ("le", False), ("lt", False)):
            value = getattr(m, attr, None)
            if value is not None:
                if is_min:
                    minimum = value
                else:
                    maximum = value
    return ParamInfo(name, kind, f.default, minimum, maximum, choices, f.description or "")


def _is_literal(annotation: Any) -> bool:
    from typing import Literal, get_origin

    return get_origin(annotation) is Literal


REGISTRY: dict[str, MethodSpec] = {}


def register(
    name: str,
    family: Family,
    *,
    params: type[MethodParams],
    aggregation: Aggregation,
    signed: bool,
    description: str,
    version: int = 1,
    scores_unmasked: bool = False,
) -> Callable[[MethodFn], MethodFn]:
    def wrap(fn: MethodFn) -> MethodFn:
        REGISTRY[name] = MethodSpec(
            name, family, fn, params, aggregation, signed, description, version, scores_unmasked
        )
        return fn

    return wrap


def get_method(name: str) -> MethodSpec:
    if name not in REGISTRY:
        raise UnknownMethodError(
            f"Unknown method {name!r}; choose one of {', '.join(sorted(REGISTRY))}."
        )
    return REGISTRY[name]


def group_scores(
    rule: Aggregation | str, token_scores: list[float], units: list[Unit]
) -> list[float]:
    """Token scores combined into `units` by the method's rule."""
    return [combine(rule, [token_scores[t] for t in u.tokens]) for u in units]
