"""Take units out of a prompt and measure what that does to the target: one home for it.

The page's mask-and-regenerate and the faithfulness evaluation ask the same question
of a built problem: with these units removed (or only these kept), how much less
likely is the explained target, how far did the next-token distributions move, and
what does the model write instead? `ablate` answers it with one masked context
(`masking.mask_context`), two teacher-forced passes (masked and full context) and,
when asked, a greedy regeneration from the masked context. A `Reference` holds the
full context's distributions so several ablations of one problem (every method of a
prompt in the evaluation) pay for them once.

The target is the problem's target alone (a contrast is not scored here): PR and KL
are taken on its tokens with the original continuation teacher-forced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from .conversation import recorded_messages
from .errors import InvalidParameterError
from .masking import (
    DEFAULT_OPERATOR,
    check_operator,
    mask_context,
    masked_messages,
    masked_prompt_text,
    masked_spans,
    prompt_turn,
    removed_pieces,
)
from .model import LanguageModel, MaskedContext
from .roles import ROLE_OUTPUT, ROLE_SYSTEM, ROLE_USER
from .segments import Unit
from .targets import Problem

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class MarkedText:
    """One text the model read, cut into (piece, removed) pairs that join back to it."""

    role: str
    turn: int | None
    pieces: tuple[tuple[str, bool], ...]

    @property
    def text(self) -> str:
        return "".join(piece for piece, _ in self.pieces)


@dataclass(frozen=True)
class Reference:
    """The full context's next-token log-distributions over the target: [n_target, vocab]."""

    operator: str
    target_ids: tuple[int, ...]
    log_distributions: torch.Tensor

    @property
    def log_probs(self) -> torch.Tensor:
        """log p(y_t | x, y<t) of each target token."""
        return _gather(self.log_distributions, list(self.target_ids))


@dataclass(frozen=True)
class Ablation:
    """What removing `removed` did to the target, and what the model read without them.

    `token_pr[t]` = p(y_t | masked, y<t) / p(y_t | full, y<t); `pr` is their geometric
    mean (comparable across target lengths), `pr_seq_log10` the whole sequence's ratio
    as log10; `token_kl[t]` = KL(p(.|masked, y<t) || p(.|full, y<t)), `kl` its mean.
    `regenerated` is the greedy continuation of the masked context (None unless asked).
    """

    operator: str
    removed: tuple[int, ...]
    masked_prompt: str
    masked_messages: list[dict[str, str]] | None
    system: MarkedText
    prompt: MarkedText
    earlier_output: MarkedText
    turns: tuple[MarkedText, ...]
    masked_log_probs: tuple[float, ...]
    original_log_probs: tuple[float, ...]
    token_pr: tuple[float, ...]
    token_kl: tuple[float, ...]
    pr: float
    pr_seq_log10: float
    kl: float
    regenerated_ids: list[int] | None = None
    regenerated: str | None = None


def reference(lm: LanguageModel, problem: Problem, operator: str = DEFAULT_OPERATOR) -> Reference:
    """The unmasked context's distributions, computed once for any number of ablations."""
    check_operator(operator)
    full = MaskedContext(ids=list(problem.context_ids), zero_positions=[], operator=operator)
    target = list(problem.target_ids)
    return Reference(operator, tuple(target), lm.target_log_distributions(full, target))


def ablate(
    lm: LanguageModel,
    problem: Problem,
    units: Sequence[Unit],
    chosen: Iterable[int],
    operator: str = DEFAULT_OPERATOR,
    *,
    keep: bool = False,
    regenerate: int | None = None,
    on_token: Callable[[int], None] | None = None,
    progress: ProgressFn | None = None,
    baseline: Reference | None = None,
) -> Ablation:
    """Remove the `chosen` units (with `keep`: every unit but them) and measure the target.

    `regenerate` asks for up to that many greedy tokens from the masked context,
    each heard by `on_token`; `progress` hears (done, total) after every such token
    and once scoring is done. `baseline` reuses the full context's distributions.
    """
    check_operator(operator)
    picked = set(chosen)
    removed = sorted(i for i in range(len(units)) if i not in picked) if keep else sorted(picked)
    unit_list = list(units)
    context = mask_context(lm, problem, unit_list, removed, operator)
    steps = (regenerate or 0) + 1
    new_ids = None
    if regenerate is not None:
        new_ids = _regenerate(lm, context, regenerate, on_token, progress, steps)
    target = list(problem.target_ids)
    if baseline is None or (baseline.operator, baseline.target_ids) != (operator, tuple(target)):
        baseline = reference(lm, problem, operator)
    masked_dist = lm.target_log_distributions(context, target)
    masked_lp, original_lp = _gather(masked_dist, target), baseline.log_probs
    per_token_kl = token_kl_divergence(masked_dist, baseline.log_distributions)
    if progress:
        progress(steps, steps)
    return Ablation(
        operator=operator,
        removed=tuple(removed),
        masked_prompt=masked_prompt_text(problem, unit_list, removed),
        masked_messages=(
            masked_messages(problem, unit_list, removed)
            if recorded_messages(problem.encoding.messages) is not None
            else None
        ),
        **_marked_texts(problem, unit_list, removed),
        masked_log_probs=tuple(masked_lp.double().tolist()),
        original_log_probs=tuple(original_lp.double().tolist()),
        token_pr=tuple((masked_lp.double() - original_lp.double()).exp().tolist()),
        token_kl=tuple(per_token_kl.tolist()),
        pr=probability_ratio(masked_lp, original_lp),
        pr_seq_log10=sequence_log10_ratio(masked_lp, original_lp),
        kl=float(per_token_kl.mean()),
        regenerated_ids=new_ids,
        regenerated=lm.decode(new_ids) if new_ids is not None else None,
    )


def probability_ratio(masked_log_probs: torch.Tensor, original_log_probs: torch.Tensor) -> float:
    """exp(mean_t [log p(y_t | masked, y<t) - log p(y_t | x, y<t)]).

    The per-token geometric mean keeps PR comparable across outputs of different
    lengths (the raw product would vanish for long outputs); it is what the official
    XPrompt code computes. `sequence_log10_ratio` is the paper's text's definition.
    """
    _check_same_shape(masked_log_probs, original_log_probs)
    diff = masked_log_probs.double() - original_log_probs.double()
    return float(torch.exp(diff.mean()))


def sequence_log10_ratio(masked_log_probs: torch.Tensor, original_log_probs: torch.Tensor) -> float:
    """log10 p(y | masked) - log10 p(y | x) over the whole sequence: the paper's PR, in log10.

    XPrompt's text defines PR as the ratio of sequence probabilities; for long
    outputs that ratio underflows, so it is reported as its base-10 logarithm
    (-2 means the masked prompt makes y a hundred times less likely).
    """
    _check_same_shape(masked_log_probs, original_log_probs)
    diff = masked_log_probs.double() - original_log_probs.double()
    return float(diff.sum() / math.log(10))


def token_kl_divergence(
    masked_logdist: torch.Tensor, original_logdist: torch.Tensor
) -> torch.Tensor:
    """KL(p(.|masked, y<t) || p(.|x, y<t)) at each target position (log-softmax inputs),
    clamped at zero against rounding."""
    _check_same_shape(masked_logdist, original_logdist)
    m, o = masked_logdist.double(), original_logdist.double()
    return (m.exp() * (m - o)).sum(-1).clamp_min(0.0)


def kl_divergence(masked_logdist: torch.Tensor, original_logdist: torch.Tensor) -> float:
    """Mean over target positions of KL(p(.|masked, y<t) || p(.|x, y<t))."""
    return float(token_kl_divergence(masked_logdist, original_logdist).mean())


def _check_same_shape(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise InvalidParameterError(f"Shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}.")


def _regenerate(
    lm: LanguageModel,
    context: MaskedContext,
    budget: int,
    on_token: Callable[[int], None] | None,
    progress: ProgressFn | None,
    steps: int,
) -> list[int]:
    """Greedy tokens from the masked context, each reported as it comes."""
    produced = 0

    def heard(token: int) -> None:
        nonlocal produced
        produced += 1
        if on_token:
            on_token(token)
        if progress:
            progress(min(produced, budget), steps)

    new_ids = lm.generate_from(context, max_new_tokens=budget, on_token=heard)
    if progress:
        progress(budget, steps)
    return new_ids


def _marked_texts(problem: Problem, units: list[Unit], removed: list[int]) -> dict:
    """Every text the model read with its removed pieces marked: the system prompt, the
    prompt (the last user message), the output before the target, and each turn."""

    def marked(text: str, role: str, turn: int | None) -> MarkedText:
        spans = masked_spans(units, removed, role, turn)
        return MarkedText(role, turn, tuple(removed_pieces(text, spans)))

    start = problem.target_span[0]
    return {
        "system": marked(problem.encoding.system_prompt or "", ROLE_SYSTEM, None),
        "prompt": marked(problem.encoding.prompt, ROLE_USER, prompt_turn(problem)),
        "earlier_output": marked(problem.output[:start], ROLE_OUTPUT, problem.answer_turn),
        "turns": tuple(
            marked(message.content, message.role, turn)
            for turn, message in enumerate(problem.encoding.messages)
        ),
    }


def _gather(logdist: torch.Tensor, target_ids: list[int]) -> torch.Tensor:
    index = torch.tensor(target_ids, dtype=torch.long, device=logdist.device)[:, None]
    return logdist.gather(1, index)[:, 0]
