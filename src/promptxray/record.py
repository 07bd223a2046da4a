"""What a result records about how it was computed, as typed fields.

A method writes these when it runs (its cost, its parameters, its completeness gap, its
coarse pass, its search) and every view reads them by name, so no view needs to know which
method wrote what, and a misspelt key is an error at once instead of a silently empty view.
`RunRecord.to_dict`/`from_dict` is the saved form; `from_flat` reads the free dict that
results saved before these types (format 2, `metadata`) carried.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypeVar

JSONValue = str | int | float | bool | None | list[Any] | dict[str, Any]

_T = TypeVar("_T")


def _known(cls: type[_T], data: dict[str, Any]) -> _T:
    """`cls` from the keys of `data` it declares; keys it does not know are dropped, so a
    file written by a later version still reads."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class RunCost:
    """Model passes the run made (as `LanguageModel.cost` counts them) and its seconds."""

    forward_passes: int = 0
    forward_calls: int = 0
    backward_passes: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Provenance:
    """Where and how the result was computed: enough to reproduce it."""

    method_version: int = 1
    family: str | None = None
    params: dict[str, JSONValue] = field(default_factory=dict)
    model: str | None = None
    device: str | None = None
    dtype: str | None = None
    output_source: str = "generated"  # "given" when the target text was supplied


@dataclass(frozen=True)
class Completeness:
    """integrated_gradients' check: source scores' sum vs log p(input) − log p(baseline)."""

    attribution_sum: float
    log_prob_input: float
    log_prob_baseline: float
    difference: float
    gap: float
    relative_gap: float
    steps: int
    tolerance: float = 0.0
    converged: bool | None = None
    summed_over: str = "source positions (user, system, earlier output)"
    steps_tried: list[list[float]] = field(default_factory=list)

    def note(self) -> str:
        """ "completeness gap 3.1% (20 steps)", and whether the step cap stopped it."""
        text = f"completeness gap {100 * self.relative_gap:.1f}% ({self.steps} steps)"
        if self.converged is False:
            text += f", above the {100 * self.tolerance:g}% tolerance at the step cap"
        return text


@dataclass(frozen=True)
class Hierarchy:
    """A coarse pass before the fine one: every coarse unit masked once, the strongest
    refined exactly; the other units share their coarse unit's score equally."""

    coarse: str
    coarse_units: int
    coarse_refined: int
    coarse_scores: list[float]
    refined: list[int]  # the units scored exactly (indices into the base units)
    coarse_passes: int | None = None
    # Adaptive refinement (hierarchical leave-one-out; None in results saved before it):
    top: int | None = None  # the k whose top k the refinement protects (0: fixed `refine`)
    slack: float | None = None  # bound: slack x the coarse unit's |drop| summed over tokens
    budget: int | None = None  # most prompts (unmasked and masked) the run could score
    threshold: float | None = None  # k-th strongest exact |score| when refinement stopped
    rounds: int | None = None  # scoring runs the refinement made
    coarse_order: list[int] | None = None  # coarse units refined, in the order refined
    coarse_bounds: list[float] | None = None  # per coarse unit: the most |score| inside it
    # per coarse unit: "refined", "one unit" (exact already), "bound" (its bound was at or
    # below `threshold`), "budget" (it could hold a top-k unit; budget spent), "fixed"
    coarse_status: list[str] | None = None

    def note(self) -> str:
        return (
            f"≈ marks units not refined: they share their {self.coarse}'s score equally "
            f"({self.coarse_refined} of {self.coarse_units} {self.coarse}s refined"
            f"{self._skipped()}, {len(self.refined)} units scored exactly)"
        )

    def _skipped(self) -> str:
        """Why the coarse units not refined could be skipped, counted by reason."""
        status = self.coarse_status or []
        parts = []
        below, spent = status.count("bound"), status.count("budget")
        if below:
            threshold = f" {self.threshold:.3g}" if self.threshold is not None else ""
            parts.append(
                f"{below} skipped: their bound is at most the {_ordinal(self.top or 0)} "
                f"strongest exact |score|{threshold}"
            )
        if spent:
            parts.append(f"{spent} skipped: budget of {self.budget} scored prompts spent")
        if status.count("fixed"):
            parts.append(f"{status.count('fixed')} not among the strongest (fixed rule)")
        return "".join(f"; {part}" for part in parts)


def _ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class Batching:
    """What the one-time probe found this model can do exactly when scoring masked variants."""

    padded_batches: bool
    prefix_cache: bool
    probe_error: float
    reason: str = ""


@dataclass(frozen=True)
class MaskedScores:
    """A masking method's reference: log p(target) with nothing masked, and variants scored."""

    baseline_log_prob: float
    variants_scored: int


@dataclass(frozen=True)
class StartSet:
    """One starting set of a joint search and its objective."""

    set: list[int]
    objective: float


@dataclass(frozen=True)
class Search:
    """A joint method's search: what it reached, from where, at what cost."""

    objective: float
    baseline_objective: float
    log_prob_drop: float
    spent: int
    trajectory: list[list[float]] = field(default_factory=list)
    budget: int | None = None
    start: str | None = None
    starts: dict[str, StartSet] = field(default_factory=dict)
    passes_by_phase: dict[str, int] = field(default_factory=dict)
    marginal_contributions: list[float | None] = field(default_factory=list)
    single_unit_evidence: str | None = None
    accepted_swaps: int | None = None
    gradient: list[float] | None = None
    # xprompt with k_max: the best set of every size 1..k_max (the joint deletion curve).
    best_by_k: list[StartSet] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Search:
        starts = {
            name: _known(StartSet, start) for name, start in (data.get("starts") or {}).items()
        }
        by_k = [_known(StartSet, s) for s in data.get("best_by_k") or []]
        return _known(cls, {**data, "starts": starts, "best_by_k": by_k})


@dataclass(frozen=True)
class ContrastScores:
    """log p(A), log p(B) and their difference from one context."""

    log_prob_target: float
    log_prob_contrast: float
    difference: float


@dataclass(frozen=True)
class ContrastReport:
    """ "Why A rather than B", with the full context and with the top units deleted."""

    target: str
    contrast: str
    contrast_tokens: int
    full: ContrastScores
    masked: ContrastScores
    masked_units: list[str]
    masking: str = "delete"
    same_text: bool = False
    note: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContrastReport:
        return _known(
            cls,
            {
                **data,
                "full": _known(ContrastScores, data["full"]),
                "masked": _known(ContrastScores, data["masked"]),
            },
        )

    def line(self) -> str:
        """One line for the views: why A rather than B, before and after masking."""
        full, masked = self.full, self.masked
        removed = ", ".join(repr(t.strip()) for t in self.masked_units)
        text = (
            f"why {self.target!r} rather than {self.contrast!r}: log p "
            f"{full.log_prob_target:.2f} vs {full.log_prob_contrast:.2f} "
            f"(difference {full.difference:+.2f}); without {removed}: "
            f"{masked.log_prob_target:.2f} vs {masked.log_prob_contrast:.2f} "
            f"(difference {masked.difference:+.2f})"
        )
        return text + (f". {self.note}" if self.note else "")


@dataclass(frozen=True)
class FaithfulnessCheck:
    """Does the model follow this explanation? Three measurements and a verdict.

    Ratios are per-token geometric means of p(target) (the evaluation's PR):
    `deletion_ratio` with the top-`k` units removed, `random_ratios` with each of the
    random k-sets removed (the reference), `sufficiency_ratio` with only the top-k kept,
    `curve[j]` with the top j removed (j = 0..k, curve[0] = 1). `beats_random` counts the
    random sets that lower p(target) less than the top-k do. `lds` is the Spearman
    correlation, over `lds_ablations` random half-ablations, between the sum of the
    removed units' scores and the drop in log p(target) they cause (ContextCite's
    linear-datamodelling score, for any method). `faithful` is None, and `reason` says
    why, when the check could not be computed.
    """

    k: int
    granularity: str
    operator: str
    seed: int
    verdict: str
    faithful: bool | None = None
    reason: str | None = None
    deletion_ratio: float | None = None
    random_ratios: list[float] = field(default_factory=list)
    beats_random: int | None = None
    sufficiency_ratio: float | None = None
    curve: list[float] = field(default_factory=list)
    lds: float | None = None
    lds_ablations: int = 0
    forward_passes: int = 0
    seconds: float = 0.0
    token: int | None = None  # the output token checked (a heatmap row), None: the target


@dataclass
class RunRecord:
    """Everything a result records about its run; sections a method does not produce are None."""

    provenance: Provenance = field(default_factory=Provenance)
    cost: RunCost = field(default_factory=RunCost)
    heatmap: str | None = None  # how the heatmap was computed, when not by the base rows
    batching: Batching | None = None
    masked: MaskedScores | None = None
    completeness: Completeness | None = None
    hierarchy: Hierarchy | None = None
    search: Search | None = None
    contrast: ContrastReport | None = None
    check: FaithfulnessCheck | None = None
    interactions: Interactions | None = None  # a joint method's pairwise interactions
    kept: KeptAblations | None = None  # context_cite's ablations, kept for other spans

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def unmasked_log_prob(self) -> float | None:
        """log p(target) of the unmasked prompt when the method scored it (leave-one-out's
        baseline, a joint search's empty set), so a check need not score it again."""
        if self.masked is not None:
            return self.masked.baseline_log_prob
        return self.search.baseline_objective if self.search is not None else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """The saved form (format 3) back into its types."""

        def section(name: str, build: Any) -> Any:
            value = data.get(name)
            return None if value is None else build(value)

        return cls(
            provenance=_known(Provenance, data.get("provenance") or {}),
            cost=_known(RunCost, data.get("cost") or {}),
            heatmap=data.get("heatmap"),
            batching=section("batching", lambda d: _known(Batching, d)),
            masked=section("masked", lambda d: _known(MaskedScores, d)),
            completeness=section("completeness", lambda d: _known(Completeness, d)),
            hierarchy=section("hierarchy", lambda d: _known(Hierarchy, d)),
            search=section("search", Search.from_dict),
            contrast=section("contrast", ContrastReport.from_dict),
            check=section("check", lambda d: _known(FaithfulnessCheck, d)),
            interactions=section("interactions", Interactions.from_dict),
            kept=section("kept", lambda d: _known(KeptAblations, d)),
        )

    @classmethod
    def from_flat(cls, meta: dict[str, Any]) -> RunRecord:
        """The free `metadata` dict of results saved before these types (format 1 and 2),
        read into the typed sections."""
        hierarchy = meta.get("hierarchy")
        return cls(
            provenance=_known(Provenance, meta),
            cost=_known(RunCost, meta),
            heatmap=meta.get("heatmap"),
            batching=_known(Batching, meta["batching"]) if meta.get("batching") else None,
            masked=_known(MaskedScores, meta) if "baseline_log_prob" in meta else None,
            completeness=(
                _known(Completeness, meta["completeness"]) if meta.get("completeness") else None
            ),
            hierarchy=(
                _known(Hierarchy, {**hierarchy, "refined": meta.get("refined") or []})
                if hierarchy
                else None
            ),
            search=Search.from_dict(meta) if "log_prob_drop" in meta else None,
            contrast=ContrastReport.from_dict(meta["contrast"]) if meta.get("contrast") else None,
            check=_known(FaithfulnessCheck, meta["check"]) if meta.get("check") else None,
            interactions=(
                Interactions.from_dict(meta["interactions"]) if meta.get("interactions") else None
            ),
        )

    def flat(self) -> dict[str, Any]:
        """The record as one flat dict, the shape `metadata` had before these types (kept
        for exports and older callers; new code reads the typed sections)."""
        out: dict[str, Any] = {**asdict(self.provenance), **asdict(self.cost)}
        if self.heatmap is not None:
            out["heatmap"] = self.heatmap
        if self.batching is not None:
            out["batching"] = asdict(self.batching)
        if self.masked is not None:
            out.update(asdict(self.masked))
        if self.completeness is not None:
            out["completeness"] = asdict(self.completeness)
        if self.hierarchy is not None:
            hierarchy = asdict(self.hierarchy)
            out["refined"] = hierarchy.pop("refined")
            out["hierarchy"] = {k: v for k, v in hierarchy.items() if v is not None}
        if self.search is not None:
            out.update({k: v for k, v in asdict(self.search).items() if v is not None})
        if self.contrast is not None:
            out["contrast"] = asdict(self.contrast)
        if self.check is not None:
            out["check"] = asdict(self.check)
        if self.interactions is not None:
            out["interactions"] = asdict(self.interactions)
        if self.kept is not None:
            out["kept_ablations"] = self.kept.summary()
        return out


@dataclass(frozen=True)
class Interaction:
    """How two units act together on log p(target), from the sets a joint method scored.

    With drop(S) = L(∅) − L(S), L the objective with the units of S masked:
    `drops` = [drop({a}), drop({b})], `pair_drop` = drop({a, b}) and
    `value` = pair_drop − drop({a}) − drop({b}). value > 0: removing both lowers
    log p(target) more than the two removals add up to (each alone changes little,
    e.g. an instruction written twice); value < 0: removing either one already does
    most of what removing both does (each is needed, e.g. the two parts of a condition).
    """

    units: list[int]  # the two units, indices into the units the method was given
    pair_drop: float
    drops: list[float]
    value: float


@dataclass(frozen=True)
class Interactions:
    """The strongest pairwise interactions among a joint result's top units.

    `pairs`: the strongest of each sign, strongest |value| first. `candidates`: the units
    whose pairs were considered. `measured`: pairs whose three terms were known;
    `from_scored`: how many of those the search had already scored (no extra pass);
    `extra_passes`: prompts scored for the rest, outside the search's budget.
    """

    pairs: list[Interaction]
    extra_passes: int
    candidates: list[int]
    from_scored: int
    measured: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Interactions:
        pairs = [_known(Interaction, pair) for pair in data.get("pairs") or []]
        return _known(cls, {**data, "pairs": pairs})

    def relabel(self, indices: list[int]) -> Interactions:
        """The same pairs with unit i renamed indices[i]: a search run on a subset of the
        units (xprompt's coarse pruning) reports them in the caller's numbering."""
        pairs = [replace(p, units=[indices[u] for u in p.units]) for p in self.pairs]
        return replace(self, pairs=pairs, candidates=[indices[u] for u in self.candidates])


@dataclass(frozen=True)
class KeptAblations:
    """A surrogate method's ablations, kept so another span of the output can be explained
    from them without a forward pass (context_cite).

    `keep[r][i]` is 1 when ablation r kept unit i (0: removed); `log_probs[r]` holds the
    signed per-row log-probabilities of the target under ablation r (a contrast's rows
    follow the target's, sign flipped), `unmasked` the same rows with nothing removed.
    `token_spans` places each target row's token on the output ([start, end) characters),
    so a span of the output selects rows. `rows` = [start, end) are the rows the scores
    were fitted on (all target rows, or a re-targeted span), `quantity` what was fitted
    ("log-odds": of p(those tokens); "contrast": log p(target) − log p(contrast)),
    `intercept` the surrogate's value with every unit removed, and `lds` its Spearman
    agreement with ablations it was not fitted on (`folds`-fold cross-validation).
    """

    keep: list[list[int]]
    log_probs: list[list[float]]
    unmasked: list[float]
    token_spans: list[list[int]]
    rows: list[int]
    quantity: str
    alpha: float
    folds: int
    intercept: float
    lds: float | None = None
    converged: bool = True
    pieces: list[str] = field(default_factory=list)  # each target row's token, as views show it
    # Re-targeted: the characters [start, end) of the output whose run scored the ablations.
    retargeted_from: list[int] | None = None

    @property
    def retargetable(self) -> bool:
        """Whether another span can be fitted from these rows (a contrast's cannot: its
        quantity spans both texts)."""
        return self.quantity == "log-odds"

    def note(self) -> str:
        """One line for the views: how well the surrogate predicts unseen ablations, and
        that other spans need no forward pass."""
        fit = "LDS n/a" if self.lds is None else f"LDS {self.lds:+.2f}"
        line = (
            f"surrogate fitted on {len(self.keep)} ablations ({fit} on held-out ablations, "
            f"{self.folds}-fold)"
        )
        if self.retargetable:
            line += "; any span of this output can be explained from them with no forward pass"
        return line

    def summary(self) -> dict[str, JSONValue]:
        """The section without its arrays (for the flat metadata views show)."""
        return {
            "ablations": len(self.keep),
            "rows": list(self.rows),
            "quantity": self.quantity,
            "alpha": self.alpha,
            "folds": self.folds,
            "lds": self.lds,
            "converged": self.converged,
            "retargetable": self.retargetable,
            "retargeted_from": self.retargeted_from,
            "note": self.note(),
        }
