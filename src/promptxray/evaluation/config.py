"""An evaluation's settings: what changes a row, checked before any model loads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..api import Request, check_granularity, check_request, segment
from ..errors import InvalidParameterError
from .rows import PromptRecord

DEFAULT_METHODS = ("random", "integrated_gradients", "leave_one_out", "xprompt", "grad_norm")


@dataclass
class EvalConfig:
    """Everything that changes a row; each method's share of it is part of the row's key.

    `k`, `masking` and `seed` are settings of the evaluation (how many units are
    masked and how) that every method declaring a parameter of that name also
    receives; `iterations`, `steps` and `params` go to the methods that declare
    them. A row's key holds only its own method's resolved parameters, so changing
    `iterations` never recomputes grad_norm rows.
    """

    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    k: int = 3
    granularity: str = "word"
    masking: str = "delete"
    max_new_tokens: int = 64
    limit: int | None = None
    seed: int = 0
    iterations: int | None = None
    steps: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    use_sbert: bool = True

    def check(self) -> None:
        from .. import masking

        if not self.methods:
            raise InvalidParameterError("Give at least one method to evaluate.", param="methods")
        specs = [check_request(m).spec for m in self.methods]
        if self.granularity == "regex":
            raise InvalidParameterError(
                "Evaluate on token, word, sentence, line or paragraph units.", param="granularity"
            )
        check_granularity(self.granularity)
        try:
            masking.check_operator(self.masking)
        except InvalidParameterError as exc:
            raise InvalidParameterError(str(exc), param="masking") from None
        for name, value in (("k", self.k), ("max_new_tokens", self.max_new_tokens)):
            if value < 1:
                raise InvalidParameterError(f"{name} must be at least 1.", param=name)
        if self.limit is not None and self.limit < 1:
            raise InvalidParameterError("limit must be at least 1.", param="limit")
        for name in self._targeted():
            if not any(spec.accepts(name) for spec in specs):
                raise InvalidParameterError(
                    f"No method among {', '.join(self.methods)} takes the parameter {name!r}.",
                    param=name,
                )
        for method in self.methods:
            self.request(method)  # every method's parameters resolve before any work

    def check_k(self, records: list[PromptRecord]) -> None:
        """Refuse a k no prompt can give, before any model loads (a k only some prompts
        are too short for becomes those prompts' row errors). Tokens need the model's
        tokenizer, so token units are checked per row instead."""
        if self.granularity == "token" or not records:
            return
        most = max(
            sum(len(segment(text, self.granularity)) for text in rec.source_texts())
            for rec in records
        )
        if self.k > most:
            raise InvalidParameterError(
                f"k ({self.k}) is more than any prompt has: the longest has {most} "
                f"{self.granularity} units.",
                param="k",
            )

    def _targeted(self) -> dict[str, Any]:
        """Parameters meant for some method: set explicitly, so some method must take them."""
        given = {"iterations": self.iterations, "steps": self.steps}
        return {**{n: v for n, v in given.items() if v is not None}, **self.params}

    def request(self, method: str) -> Request:
        """`method` checked, with its resolved parameters: the settings it declares, its
        defaults for the rest."""
        spec = check_request(method).spec
        shared = {"k": self.k, "masking": self.masking, "seed": self.seed, **self._targeted()}
        return check_request(method, params={n: v for n, v in shared.items() if spec.accepts(n)})

    def params_key(self, method: str) -> str:
        """What a stored row was computed with: the method's key, and the metrics."""
        request = self.request(method)
        key = request.spec.result_key(request.params)
        key["sbert"] = self.use_sbert
        return json.dumps(key, sort_keys=True)
