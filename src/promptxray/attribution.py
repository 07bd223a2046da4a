"""`Attribution`: the one result every method returns and every view consumes.

It keeps the finest level a method computed (its *base* units) next to the level
being shown. Two decisions live here and nowhere else, so every view (console,
HTML, heatmap, web page) and the evaluation agree:

- **which units exist at a granularity**: a token-level method's result is
  regrouped by the method's own rule (sum, or the norm of the group's gradient);
  a result computed by masking whole units is defined only on those units and is
  never relabelled at another granularity;
- **the order of units** (`ranking`): the joint set first, then by support for
  the target (what masking removes) or by magnitude with the sign kept (what lists show);
- **which rows the matrix has** (`matrix_rows`): target tokens, or the output's
  words, sentences or lines, combined by `row_rule` (the method's rule read for rows).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .aggregation import FORMAT_1_RULES, Aggregation, combine
from .conversation import source_text
from .errors import InvalidParameterError, RegroupRefusedError
from .output_rows import (
    ROW_GROUPINGS,
    MatrixRows,
    RowsBy,
    check_rows_by,
    group_rows,
    row_rule,
    token_spans,
)
from .record import RunRecord
from .segments import Unit, check_granularity, group_units
from .unit_pairs import PairsView, pairs_view

__all__ = [
    "ROW_GROUPINGS",
    "Attribution",
    "MatrixRows",
    "Notes",
    "PairsView",
    "RankBy",
    "RowsBy",
    "RunRecord",
    "Unit",
    "row_rule",
]

# 3: the run is recorded as typed sections (`record`); 2 kept a free `metadata` dict.
_FORMAT_VERSION = 3

RankBy = Literal["support", "magnitude"]


@dataclass(frozen=True)
class Notes:
    """Lines a view shows beside the scores; None where the result has nothing to say."""

    completeness: str | None = None  # integrated_gradients' completeness gap
    refinement: str | None = None  # which units a coarse pass left unrefined (≈)
    contrast: str | None = None  # why the target rather than the contrast, before and after
    check: str | None = None  # the faithfulness check's verdict, with its figures
    surrogate: str | None = None  # a fitted surrogate's held-out LDS, and re-targeting

    def lines(self) -> list[str]:
        found = (self.completeness, self.refinement, self.contrast, self.check, self.surrogate)
        return [n for n in found if n]


@dataclass
class Attribution:
    """Scores over source units for one (prompt, target) pair.

    For a conversation, `messages` holds the turns before the explained one
    (`{"role", "content"}` dicts; a unit's `turn` indexes them, and the output is
    turn `len(messages)`), `prompt` the last user message and `system_prompt` a
    leading system message. A single-turn prompt keeps `messages` None.
    """

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
    # Set when the heatmap was computed over units of this granularity directly (not
    # over the base units): it then exists at that granularity only.
    matrix_granularity: str | None = None
    # "Why the target and not this?": the contrast text and its token pieces. The
    # scores are then of log p(target) - log p(contrast), and the heatmap has a row for
    # each target token, then one (sign flipped) for each contrast token.
    contrast: str | None = None
    contrast_tokens: list[str] | None = None
    base_selected: list[int] | None = None
    aggregation: str = Aggregation.SUM
    signed: bool = True
    granularity: str | None = None
    pattern: str | None = None
    template_tokens: list[str] = field(default_factory=list)
    template_scores: list[float] = field(default_factory=list)
    record: RunRecord = field(default_factory=RunRecord)
    messages: list[dict[str, str]] | None = None

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

    def _regroup(self, values: list[float]) -> list[float]:
        """Base-unit values combined into the current units by the method's rule."""
        units, owner = self._grouping()
        parts: list[list[float]] = [[] for _ in units]
        for base_index, value in enumerate(values):
            parts[owner[base_index]].append(value)
        return [combine(self.aggregation, p) for p in parts]

    @property
    def scores(self) -> list[float]:
        return self._regroup(self.base_scores)

    @property
    def matrix(self) -> list[list[float]] | None:
        """Target token x unit scores, combined into the current units by the method's rule."""
        if self.base_matrix is None:
            return None
        if self.matrix_granularity is not None:
            return self.base_matrix if self.granularity == self.matrix_granularity else None
        return [self._regroup(row) for row in self.base_matrix]

    def matrix_note(self) -> str | None:
        """Why a result computed with a heatmap shows none at this granularity, or None."""
        if self.base_matrix is None or self.matrix is not None:
            return None
        return (
            f"The heatmap was computed at {self.matrix_granularity} units; show it at "
            f"granularity {self.matrix_granularity} or explain again at {self.granularity}."
        )

    def target_token_spans(self) -> list[tuple[int, int]]:
        """Each target token's character span in `target` (`output_rows.token_spans`)."""
        return token_spans(self.target, self.target_tokens)

    def matrix_rows(self, by: RowsBy | str = "token") -> MatrixRows | None:
        """`matrix` with its rows (target tokens) grouped into output words, sentences or
        lines, combined by `row_rule(aggregation)`; None when there is no matrix."""
        matrix = self.matrix
        if by not in ROW_GROUPINGS or matrix is None:
            check_rows_by(by)
            return None
        return group_rows(
            self.target, self.target_tokens, self.row_tokens, matrix, self.aggregation, by
        )

    @property
    def inherited(self) -> set[int]:
        """Units whose score is an estimate inherited from a coarser unit (hierarchical
        leave-one-out left them unrefined); empty for every exactly scored result."""
        hierarchy = self.record.hierarchy
        if hierarchy is None or self.granularity != self.base_granularity:
            return set()
        return set(range(len(self.units))) - set(hierarchy.refined)

    @property
    def row_tokens(self) -> list[str]:
        """One label a heatmap row: target pieces, then "vs" and each contrast piece."""
        return self.target_tokens + [f"vs{p}" for p in self.contrast_tokens or []]

    @property
    def selected(self) -> list[int] | None:
        """Units chosen jointly (xprompt), in the method's order of importance."""
        if self.base_selected is None:
            return None
        _, owner = self._grouping()
        return list(dict.fromkeys(owner[i] for i in self.base_selected))

    @property
    def regroupable(self) -> bool:
        return self.aggregation != Aggregation.FIXED

    def aggregate(self, granularity: str, pattern: str | None = None) -> Attribution:
        """The same result at another granularity, by the method's rule; no model call.

        Token-level results regroup into any units. Results computed by masking
        whole units exist only at those units: asking for others is refused,
        because relabelling a sentence's score as its first word's would be a lie.
        """
        check_granularity(granularity, pattern)
        same = granularity == self.base_granularity and (
            granularity != "regex" or pattern == self.pattern
        )
        # A check is of the units it removed: at other units it is recomputed, never relabelled.
        check = self.record.check
        here = (granularity, pattern) == (self.granularity, self.pattern)
        record = self.record if check is None or here else replace(self.record, check=None)
        if same:
            return replace(self, granularity=granularity, pattern=pattern, record=record)
        if not self.regroupable:
            what = f"{granularity} units" + (f" ({pattern!r})" if pattern else "")
            raise RegroupRefusedError(
                f"This {self.method} result was computed by masking whole "
                f"{self.base_granularity} units, so it has no scores for {what}; "
                f"recompute it at granularity {granularity}."
            )
        return replace(self, granularity=granularity, pattern=pattern, record=record)

    def ranking(self, by: RankBy = "support") -> list[int]:
        """Unit indices at the current view, most important first; the one order every view uses.

        `support` (what mask-top-k and the evaluation remove): largest score first,
        so for signed methods the units that raise p(target) most lead and the ones
        that lower it come last. `magnitude` (what lists show): largest |score|
        first, the sign kept in the score, so opposing units are visible too.
        A joint method's selected set always comes first, in its own order.
        Ties keep reading order.
        """
        if by not in ("support", "magnitude"):
            raise InvalidParameterError(f"Rank by 'support' or 'magnitude', not {by!r}.")
        scores = self.scores
        if by == "magnitude":
            order = sorted(range(len(scores)), key=lambda i: -abs(scores[i]))
        else:
            order = sorted(range(len(scores)), key=lambda i: -scores[i])
        chosen = self.selected or []
        picked = set(chosen)
        return list(chosen) + [i for i in order if i not in picked]

    def top_k(self, k: int = 5, by: RankBy = "magnitude") -> list[tuple[Unit, float]]:
        """The first k units of `ranking(by)` with their scores."""
        if k < 0:
            raise InvalidParameterError("k must be at least 0.")
        units, scores = self.units, self.scores
        return [(units[i], scores[i]) for i in self.ranking(by)[:k]]

    # ----- what the views say besides the scores ----------------------------------------
    @property
    def notes(self) -> Notes:
        """The one-line notes every view prints next to the scores, from the typed record."""
        record = self.record
        return Notes(
            completeness=record.completeness.note() if record.completeness else None,
            refinement=record.hierarchy.note() if record.hierarchy else None,
            contrast=record.contrast.line() if record.contrast else None,
            check=f"check: {record.check.verdict}" if record.check else None,
            surrogate=record.kept.note() if record.kept else None,
        )

    @property
    def interactions(self) -> PairsView | None:
        """The strongest pairwise interactions a joint method measured, with unit texts;
        None without them, or at units other than the ones they were measured on."""
        found = self.record.interactions
        if found is None or self.granularity != self.base_granularity:
            return None
        return pairs_view(found, [unit.text for unit in self.units])

    @property
    def metadata(self) -> dict[str, Any]:
        """The record as the flat dict results carried before it was typed (format 2):
        for exports and older callers; read `record` in new code."""
        return {"method": self.method, "aggregation": str(self.aggregation), **self.record.flat()}

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
            "matrix_granularity": self.matrix_granularity,
            "contrast": self.contrast,
            "contrast_tokens": self.contrast_tokens,
            "base_selected": self.base_selected,
            "aggregation": str(self.aggregation),
            "signed": self.signed,
            "granularity": self.granularity,
            "pattern": self.pattern,
            "template_tokens": self.template_tokens,
            "template_scores": self.template_scores,
            "record": self.record.to_dict(),
            "messages": self.messages,
        }
        for u in d["base_units"]:
            u["span"] = list(u["span"]) if u["span"] is not None else None
        return d

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Attribution:
        version = d.get("format")
        if version not in (1, 2, _FORMAT_VERSION):
            raise InvalidParameterError(f"Unknown attribution format {version!r}.")
        if version == 1:  # before methods declared their rule: the rules they had then
            rule, signed = FORMAT_1_RULES.get(d["method"], (Aggregation.SUM, True))
            d = {**d, "aggregation": rule, "signed": signed}
        if version < 3:  # a free metadata dict, read into the typed record
            record = RunRecord.from_flat(d.get("metadata") or {})
        else:
            record = RunRecord.from_dict(d["record"])
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
            matrix_granularity=d.get("matrix_granularity"),
            contrast=d.get("contrast"),
            contrast_tokens=d.get("contrast_tokens"),
            base_selected=d["base_selected"],
            aggregation=Aggregation(d["aggregation"]),
            signed=bool(d["signed"]),
            granularity=d["granularity"],
            pattern=d["pattern"],
            template_tokens=list(d["template_tokens"]),
            template_scores=[float(s) for s in d["template_scores"]],
            record=record,
            messages=d.get("messages"),  # absent before conversations
        )

    @classmethod
    def from_json(cls, text: str) -> Attribution:
        return cls.from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Attribution) and self.to_dict() == other.to_dict()

    # ----- views -----------------------------------------------------------------
    def role_text(self, role: str, turn: int | None = None) -> str:
        """The text a span of this role and turn indexes into (`conversation.source_text`)."""
        return source_text(
            role,
            turn,
            messages=self.messages,
            prompt=self.prompt,
            system_prompt=self.system_prompt,
            earlier_output=self.output[: self.target_span[0]],
        )
