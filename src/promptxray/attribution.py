"""`Attribution`: the one result every method returns and every view consumes.

It keeps the finest level a method computed (its *base* units) next to the level
being shown, so switching granularity re-aggregates without touching the model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .errors import InvalidParameterError, UnknownGranularityError
from .model import ROLE_OUTPUT, ROLE_SYSTEM, ROLE_USER

__all__ = ["Attribution", "Unit"]
from .segments import Unit, check_granularity, group_units

_FORMAT_VERSION = 1


@dataclass
class Attribution:
    """Scores over source units for one (prompt, target) pair."""

    prompt: str
    system_prompt: str | None
    output: str
    target_span: tuple[int, int]
    target_tokens: list[str]
    method: str
    base_granularity: str
    base_units: list[Unit]
    base_scores: list[float]
    base_matrix: list[list[float]] | None = None
    base_selected: list[int] | None = None
    granularity: str | None = None
    pattern: str | None = None
    template_tokens: list[str] = field(default_factory=list)
    template_scores: list[float] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    # ----- the view at the chosen granularity ----------------------------------------
    def __post_init__(self) -> None:
        if self.granularity is None:
            self.granularity = self.base_granularity
        self._view: tuple[list[Unit], list[int]] | None = None

    @property
    def target(self) -> str:
        return self.output[self.target_span[0] : self.target_span[1]]

    def _grouping(self) -> tuple[list[Unit], list[int]]:
        """Units at the current granularity, and for each base unit the view unit it joins."""
        if self._view is None:
            if self.granularity == self.base_granularity:
                self._view = (list(self.base_units), list(range(len(self.base_units))))
            else:
                self._view = group_units(
                    self.base_units, self.role_text, self.granularity, self.pattern
                )
        return self._view

    @property
    def units(self) -> list[Unit]:
        return self._grouping()[0]

    @property
    def scores(self) -> list[float]:
        units, owner = self._grouping()
        out = [0.0] * len(units)
        for base_index, score in enumerate(self.base_scores):
            out[owner[base_index]] += score
        return out

    @property
    def matrix(self) -> list[list[float]] | None:
        """Target token x unit scores, summed into the current units."""
        if self.base_matrix is None:
            return None
        units, owner = self._grouping()
        rows = []
        for row in self.base_matrix:
            out = [0.0] * len(units)
            for base_index, value in enumerate(row):
                out[owner[base_index]] += value
            rows.append(out)
        return rows

    @property
    def selected(self) -> list[int] | None:
        """Units chosen jointly (xprompt); a view unit is chosen if any of its parts is."""
        if self.base_selected is None:
            return None
        _, owner = self._grouping()
        return sorted({owner[i] for i in self.base_selected})

    def aggregate(self, granularity: str, pattern: str | None = None) -> Attribution:
        """The same scores summed into coarser units; the model is not called."""
        check_granularity(granularity, pattern)
        if granularity == "token" and self.base_granularity != "token":
            raise UnknownGranularityError(
                f"This {self.method} result was computed on {self.base_granularity} units; "
                "it cannot be split into tokens. Re-run with --granularity token."
            )
        if granularity == "regex" and self.base_granularity != "token":
            raise UnknownGranularityError("Regex units need a result computed on tokens.")
        return replace(self, granularity=granularity, pattern=pattern)

    def top_k(self, k: int = 5, by_abs: bool = False) -> list[tuple[Unit, float]]:
        """The k highest-scoring units (joint methods: their selected set first)."""
        if k < 0:
            raise InvalidParameterError("k must be at least 0.")
        units, scores = self.units, self.scores
        order = sorted(range(len(units)), key=lambda i: -(abs(scores[i]) if by_abs else scores[i]))
        chosen = self.selected
        if chosen:
            picked = set(chosen)
            order = [i for i in order if i in picked] + [i for i in order if i not in picked]
        return [(units[i], scores[i]) for i in order[:k]]

    # ----- persistence ------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {
            "format": _FORMAT_VERSION,
            "prompt": self.prompt,
            "system_prompt": self.system_prompt,
            "output": self.output,
            "target_span": list(self.target_span),
            "target_tokens": self.target_tokens,
            "method": self.method,
            "base_granularity": self.base_granularity,
            "base_units": [asdict(u) for u in self.base_units],
            "base_scores": self.base_scores,
            "base_matrix": self.base_matrix,
            "base_selected": self.base_selected,
            "granularity": self.granularity,
            "pattern": self.pattern,
            "template_tokens": self.template_tokens,
            "template_scores": self.template_scores,
            "metadata": self.metadata,
        }
        for u in d["base_units"]:
            u["span"] = list(u["span"]) if u["span"] is not None else None
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attribution:
        if d.get("format") != _FORMAT_VERSION:
            raise InvalidParameterError(f"Unknown attribution format {d.get('format')!r}.")
        return cls(
            prompt=d["prompt"],
            system_prompt=d["system_prompt"],
            output=d["output"],
            target_span=(int(d["target_span"][0]), int(d["target_span"][1])),
            target_tokens=list(d["target_tokens"]),
            method=d["method"],
            base_granularity=d["base_granularity"],
            base_units=[Unit.from_dict(u) for u in d["base_units"]],
            base_scores=[float(s) for s in d["base_scores"]],
            base_matrix=d["base_matrix"],
            base_selected=d["base_selected"],
            granularity=d["granularity"],
            pattern=d["pattern"],
            template_tokens=list(d["template_tokens"]),
            template_scores=[float(s) for s in d["template_scores"]],
            metadata=d["metadata"],
        )

    @classmethod
    def from_json(cls, text: str) -> Attribution:
        return cls.from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Attribution) and self.to_dict() == other.to_dict()

    # ----- views -----------------------------------------------------------------
    def role_text(self, role: str) -> str:
        if role == ROLE_USER:
            return self.prompt
        if role == ROLE_SYSTEM:
            return self.system_prompt or ""
        if role == ROLE_OUTPUT:
            return self.output[: self.target_span[0]]
        return ""

    def _repr_html_(self) -> str:
        from .render.html import render_html

        return render_html(self)

    def __rich__(self) -> Any:
        from .render.console import render_console

        return render_console(self)
