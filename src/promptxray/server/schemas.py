"""Request and response bodies of the JSON API (they also document it in /openapi.json).

Shape checks live here so pydantic rejects malformed bodies with a 422 before any
handler runs; checks that need the model (prompt length in tokens, a span that
covers no token) raise `PromptXrayError` in the handlers and become a 400.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from ..api import METHODS

# A generous character cap so a giant body is refused before tokenisation; the real
# limit is the model's context, checked in tokens.
MAX_PROMPT_CHARS = 200_000

JobStatus = Literal["queued", "running", "done", "error", "cancelled"]


class RequestBody(BaseModel):
    """A request body whose fields a library error can be traced back to.

    The library names its parameters; `field_for` says which field of this body
    carries one (`RENAMED` lists those whose names differ), or None for none.
    """

    RENAMED: ClassVar[dict[str, str]] = {}

    def field_for(self, param: str) -> str | None:
        name = self.RENAMED.get(param, param)
        return name if name in type(self).model_fields else None


class GenerateRequest(RequestBody):
    """A prompt (+ system prompt) or a conversation; generated, or answered by `response`.

    The prompt's content is checked by `conversation` (the library's one check of a
    prompt, so a bad one reads as it does in the CLI): 400 with its message.
    """

    prompt: str | None = Field(
        default=None, max_length=MAX_PROMPT_CHARS, description="The user's prompt."
    )
    system_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    messages: Any = Field(
        default=None,
        description='Instead of prompt: a conversation, [{"role": "system"|"user"|"assistant", '
        '"content": ...}, ...]. A final assistant message is the response to explain.',
    )
    response: str | None = Field(
        default=None,
        max_length=MAX_PROMPT_CHARS,
        description="A response from elsewhere, explained instead of generating one "
        "(recorded as supplied, not generated).",
    )
    max_new_tokens: int = Field(default=64, ge=1, le=2048)

    # The library calls a supplied response the target.
    RENAMED: ClassVar[dict[str, str]] = {"target": "response"}


class ExplainRequest(RequestBody):
    run_id: str = Field(max_length=64)
    span: tuple[int, int] | None = Field(
        default=None, description="Characters [start, end) of the output to explain; null = all."
    )
    method: str = Field(default="grad_norm", max_length=64)
    contrast: str | None = Field(
        default=None,
        max_length=MAX_PROMPT_CHARS,
        description="Explain the target instead of this text: log p(target) - log p(contrast).",
    )
    granularity: str = Field(default="word", max_length=32)
    matrix: bool = Field(default=False, description="Also compute the target x source heatmap.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The method's parameters by name (see /api/info); others are refused.",
    )
    k: int | None = Field(default=None, description="Shorthand for params.k.")
    iterations: int | None = Field(default=None, description="Shorthand for params.iterations.")
    steps: int | None = Field(default=None, description="Shorthand for params.steps.")
    masking: str | None = Field(default=None, description="Shorthand for params.masking.")
    check: bool = Field(
        default=True,
        description="Check the result's faithfulness (its top units removed against random "
        "ones, only them kept, LDS); its passes are part of the estimate.",
    )
    check_k: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="The check's k: top units removed (null: 3, or fewer on a short prompt).",
    )

    SHORTHANDS: ClassVar[tuple[str, ...]] = ("k", "iterations", "steps", "masking")

    def method_params(self) -> dict[str, Any]:
        """`params` plus any shorthand that was set (the method validates them all)."""
        names = self.SHORTHANDS
        given = {n: getattr(self, n) for n in names if getattr(self, n) is not None}
        return {**given, **self.params}

    def field_for(self, param: str) -> str | None:
        """A method parameter is `params.NAME`, unless it came as its shorthand field."""
        if param in self.params:
            return f"params.{param}"
        if param in self.SHORTHANDS and getattr(self, param) is not None:
            return param
        spec = METHODS.get(self.method)
        if spec is not None and param in {p.name for p in spec.param_info()}:
            return f"params.{param}"
        return super().field_for(param)


class EstimateView(BaseModel):
    """What an explanation would cost; `confirm` asks the page to check with the user."""

    available: bool = Field(description="False while the model is busy with a job.")
    line: str = Field(description="One line: 'leave_one_out: about 327 forward passes, ~40 s'.")
    confirm: bool = Field(description="Predicted above the page's confirmation threshold.")
    method: str | None = None
    forward_sequences: int | None = None
    forward_calls: int | None = None
    backward_calls: int | None = None
    upper_bound: bool | None = Field(None, description="The passes are a bound, not a count.")
    seconds: float | None = None
    method_forward: int | None = Field(None, description="Forward passes of the method alone.")
    check_forward: int | None = Field(None, description="Forward passes of its check.")


class MaskRequest(RequestBody):
    explanation_id: str = Field(max_length=64)
    granularity: str | None = Field(
        default=None, max_length=32, description="Units are indices at this view (default: as run)."
    )
    units: list[int] | None = Field(
        default=None, max_length=10_000, description="Unit indices to remove; or use top_k."
    )
    top_k: int | None = Field(default=None, ge=1, le=10_000)
    operator: Literal["delete", "replace", "zero"] = "delete"


class CheckRequest(RequestBody):
    """The faithfulness check of a stored explanation at other units, or of one heatmap row."""

    explanation_id: str = Field(max_length=64)
    granularity: str | None = Field(
        default=None,
        max_length=32,
        description="Check the result regrouped to these units (default: as run); a check "
        "is recomputed at its units, never relabelled.",
    )
    token: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Check heatmap row `token` (an output token) against that token's "
        "probability; null: the whole target.",
    )
    k: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Top units removed (default: the explanation's check_k, else 3 or fewer).",
    )

    # The library calls the check's k `check_k`.
    RENAMED: ClassVar[dict[str, str]] = {"check_k": "k"}


class JobRef(BaseModel):
    job_id: str
    status: JobStatus


class JobState(BaseModel):
    id: str
    kind: str
    status: JobStatus
    done: int
    total: int
    partial: str = Field(description="Text produced so far (generation jobs).")
    result: Any = None
    error: str | None = None
    queue_position: int = 0
    seconds: float | None = None


class UnitView(BaseModel):
    index: int
    text: str
    role: str
    turn: int | None = Field(None, description="The message the unit comes from.")
    span: tuple[int, int] | None
    score: float
    color: str = Field(description="CSS background of the unit (one palette for every view).")
    text_color: str = Field(description="CSS text colour that reads on `color`.")
    tinted: bool = Field(description="False when the score is too near zero to be coloured.")
    inherited: bool = Field(
        False, description="Hierarchical leave-one-out left it unrefined: a shared coarse score."
    )
    line: int | None = Field(description="Line of the unit in its own text (1-based).")
    occurrence: int = Field(description="Which occurrence of the same words this unit is.")
    occurrences: int = Field(description="How many units have the same words.")
    position: str = Field(description='How lists name the unit: "Topic: #3 · prompt line 7".')
    place: str = Field(description='Its text: "prompt", or a turn "[turn 2 · assistant]".')
    where: str = Field(description='The position without the text: "#3 · prompt line 7".')


class PaletteView(BaseModel):
    """A colour scale: value -> stops[clamp(floor((v - lo) / (hi - lo) * len(stops)))]."""

    signed: bool = Field(description="Domain [-peak, peak] if signed, else [0, peak].")
    peak: float
    peak_label: str = Field(description="The peak as the legends print it.")
    stops: list[str]
    legend: str = Field(description="What the colours mean (the same words in every view).")
    caption: str = Field(description="The legend plus the peak the colours are scaled to.")
    gamma: float = Field(default=1.0, description="Intensity: |v|/peak is raised to it.")
    floor: float = Field(default=0.0, description="|v|/peak below this draws neutral.")


class MatrixRowsView(BaseModel):
    """How the heatmap's rows group the target: tokens, or output words, sentences, lines."""

    by: str
    labels: list[str] = Field(description="Each row's text (a token's piece, or its words).")
    tokens: list[list[int]] = Field(description="The target tokens each row combines.")


class CheckView(BaseModel):
    """A faithfulness check (`FaithfulnessCheck`) with the words and tone of its badge.

    Ratios are per-token geometric means of p(target) after the change, against the
    unmasked prompt: below 1 the target became less likely.
    """

    k: int = Field(description="Top units removed.")
    granularity: str = Field(description="The units it removed: those of the view it checks.")
    operator: str = Field(description="How a unit is removed: delete, replace or zero.")
    seed: int
    verdict: str = Field(description="One line for a person, with the figures behind it.")
    faithful: bool | None = Field(None, description="null: not checked (`reason` says why).")
    reason: str | None = None
    deletion_ratio: float | None = Field(None, description="With the top-k units removed.")
    random_ratios: list[float] = Field(
        default_factory=list, description="With each random k-set removed (the reference)."
    )
    beats_random: int | None = Field(
        None, description="Random k-sets that lower p(target) less than the top-k do."
    )
    sufficiency_ratio: float | None = Field(None, description="With only the top-k kept.")
    curve: list[float] = Field(
        default_factory=list, description="curve[j]: with the top j units removed (j = 0..k)."
    )
    lds: float | None = Field(
        None, description="Spearman(sum of removed scores, drop in log p) over half-ablations."
    )
    lds_ablations: int = 0
    forward_passes: int = Field(0, description="Extra sequences the check scored.")
    seconds: float = 0.0
    token: int | None = Field(None, description="The output token checked; null: the target.")
    label: str = Field(description='The badge: the verdict up to its colon ("faithful").')
    tone: Literal["good", "partial", "bad", "none"] = Field(description="The badge's colour.")


class SectionView(BaseModel):
    """One text the page draws: a turn of a conversation, the prompt, or the output."""

    role: str
    turn: int | None
    title: str = Field(description='Its heading: "Prompt", or "[turn 2 · assistant]".')
    text: str


class ExplanationView(BaseModel):
    """An attribution at one granularity, ready to draw."""

    explanation_id: str
    run_id: str
    method: str
    granularity: str
    base_granularity: str
    prompt: str
    system_prompt: str | None
    messages: list[dict[str, str]] | None = Field(
        None, description="A conversation's turns before the explained one; null: single-turn."
    )
    sections: list[SectionView] = Field(
        default_factory=list, description="The texts to draw in reading order, output last."
    )
    output_source: str = Field("generated", description="generated, or given (supplied).")
    output: str
    target_span: tuple[int, int]
    target_tokens: list[str]
    units: list[UnitView]
    matrix: list[list[float]] | None = Field(
        description="Heatmap rows (grouped as matrix_rows says) x units."
    )
    matrix_rows: MatrixRowsView | None = None
    matrix_stops: list[list[int]] | None = Field(
        description="Each heatmap cell's colour as an index into matrix_palette.stops."
    )
    selected: list[int] | None
    top: list[int] = Field(
        description="Unit indices, strongest |score| first (a joint method's set first)."
    )
    listed: list[int] = Field(
        description="The part of `top` the list shows: tinted units and a joint method's set."
    )
    removal: list[int] = Field(
        description="What mask top-k removes: most support first (a joint method's set first)."
    )
    max_abs: float
    signed: bool
    palette: PaletteView
    matrix_palette: PaletteView | None
    template_tokens: list[str]
    template_scores: list[float]
    settings: dict[str, Any]
    metadata: dict[str, Any]
    search: dict[str, Any] | None = Field(
        description="A joint method's search: start, passes, log-probability drop, trajectory."
    )
    completeness: str | None = Field(
        None, description="Integrated gradients' completeness gap, e.g. '3.1% (20 steps)'."
    )
    contrast: str | None = Field(
        None,
        description="A contrast's log p(target) and log p(contrast), before and after masking.",
    )
    refinement: str | None = Field(
        None, description="Hierarchical leave-one-out: how many units were refined exactly."
    )
    surrogate: str | None = Field(
        None, description="context_cite: its surrogate's held-out LDS; other spans for free."
    )
    matrix_note: str | None = Field(
        None, description="Why a heatmap computed at other units is not shown at these."
    )
    check: CheckView | None = Field(
        None, description="The faithfulness check at these units; null: none known here."
    )
    check_due: bool = Field(
        False,
        description="The explanation was asked with its check and none is known at these "
        "units yet: POST /api/check computes it (the page does so by itself).",
    )
    interactions: dict[str, Any] | None = Field(
        None,
        description="A joint method's strongest pairwise interactions: note, pairs (units, "
        "texts, value in nats, line), and each unit's partners; null: none measured.",
    )


class RunSummary(BaseModel):
    id: str
    created: float
    model: str
    prompt: str
    output: str
    n_explanations: int
    last_method: str | None
    saved: bool = Field(default=True, description="False: kept in memory only (disk full).")


class RunRecord(BaseModel):
    """A run as the history keeps it (without its output ids): compare sides and run detail."""

    id: str
    created: float
    model: str
    prompt: str
    system_prompt: str | None
    max_new_tokens: int
    messages: list[dict[str, str]] | None = None
    output_source: str = "generated"
    output: str


class CompareSide(BaseModel):
    ref: str
    run: RunRecord
    view: ExplanationView | None
    created: float = Field(description="When its explanation (else its run) was made.")


class DiffPiece(BaseModel):
    op: Literal["equal", "delete", "insert"]
    text: str


class ScoreChange(BaseModel):
    text: str
    role: str
    a_index: int
    b_index: int
    a_score: float
    b_score: float
    delta: float = Field(description="b_score - a_score")
    color: str = Field(description="The change on a signed scale of the changes.")
    text_color: str


class CompareView(BaseModel):
    """Two runs or explanations side by side, coloured on one scale when they can be."""

    a: CompareSide
    b: CompareSide
    diff: dict[str, list[DiffPiece]] = Field(description="system_prompt, prompt, output")
    shared_scale: bool
    palette: PaletteView | None
    changes: list[ScoreChange] = Field(description="Units present in both, largest change first.")
    note: str | None


class CompareChoice(BaseModel):
    ref: str = Field(description="RUN:EXPLANATION, as /api/compare takes it")
    label: str
    created: float


class RunDetail(RunRecord):
    """A run with every explanation (settings only) and every mask experiment."""

    explanations: list[dict[str, Any]]
    edits: list[dict[str, Any]]


class InfoResponse(BaseModel):
    model: str
    max_context: int
    methods: list[dict[str, Any]]
    granularities: list[str]
    data_dir: str
    jobs_note: str
    gamma_range: list[float]
    passes_note: str = Field("", description="What one forward pass is, as every count says.")


class RetargetRequest(RequestBody):
    """Another span of a stored context_cite explanation's output, from its kept ablations."""

    explanation_id: str = Field(
        max_length=64, description="A stored explanation that kept its ablations (context_cite)."
    )
    span: tuple[int, int] = Field(
        description="Characters [start, end) of the output to explain, inside its target."
    )
    RENAMED: ClassVar[dict[str, str]] = {"result": "explanation_id"}


class RetargetView(ExplanationView):
    """The re-targeted explanation, stored as a new one (no forward pass was made)."""

    retargeted_from: str = Field(description="The explanation whose ablations were fitted.")
    saved: bool = Field(default=True, description="False: kept in memory only (disk full).")
    warning: str | None = None
