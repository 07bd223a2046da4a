"""The faithfulness check every explanation carries: does the model follow it?

Three measurements, all from masked copies of the prompt scored in one batched run that
shares the prompt's prefix cache (the same scorer leave-one-out uses):

- **deletion**: p(target) with the explanation's top-k units removed, against R random
  k-sets removed (a method that points at what matters beats most of them);
- **sufficiency**: p(target) with only the top-k units kept;
- **agreement (LDS)**: over R' random half-ablations (each unit dropped with
  probability ½), the Spearman correlation between the sum of the dropped units'
  scores and the drop in log p(target) they cause. The ablations depend on the prompt
  and its units only, never on the method, so every method of a prompt is judged on
  the same ones.

Ratios are per-token geometric means, exp(mean over target tokens of Δ log p): the
evaluation's PR, comparable across target lengths. For a contrast the rows are the
signed rows of log p(A) − log p(B), so the ratio measures the preference. `check_cost`
counts the same variants before a run, so the check's cost is part of every estimate.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import torch

from .ablation_sets import half_ablations, seeded
from .ablation_sets import lds as ablation_lds
from .errors import InvalidParameterError
from .masking import DEFAULT_OPERATOR, keep_only, mask_context
from .methods import quantity
from .methods.base import Cost
from .model import LanguageModel, MaskedContext
from .record import FaithfulnessCheck
from .segments import Unit
from .targets import Problem

DEFAULT_K = 3
RANDOM_SETS = 8  # R: the random k-sets the top-k is ranked against
LDS_ABLATIONS = 8  # R': random half-ablations for the agreement score
# Verdict thresholds: beating every random set by chance has probability 1/(R + 1), an
# LDS of 0.5 over 8 ablations about 0.1 under no relation; both together about 1%.
FAITHFUL_LDS = 0.5
PARTLY_SHARE = 0.75


@dataclass(frozen=True)
class CheckPlan:
    """The masked variants a check scores, in order, and what each one is."""

    k: int
    top: list[int]
    random_sets: list[list[int]]
    ablations: list[list[int]]
    variants: list[MaskedContext]
    full: MaskedContext
    scores_full: bool  # the unmasked context is the first variant (not known already)


def effective_k(n_units: int, k: int | None) -> int:
    """The k the check uses: the default 3, or fewer when the prompt has fewer units (one
    unit must stay, else every k-set is the same); an explicit k must leave one."""
    if k is None:
        return max(1, min(DEFAULT_K, n_units - 1))
    check_k_given(k)
    if k >= n_units:
        raise InvalidParameterError(
            f"check_k ({k}) must be below the number of units ({n_units}): removing every "
            "unit leaves nothing to compare with.",
            param="check_k",
        )
    return k


def check_k_given(k: int | None) -> None:
    """Refuse a k no prompt could take (asked before any model is needed)."""
    if k is not None and k < 1:
        raise InvalidParameterError(f"check_k must be at least 1, not {k}.", param="check_k")


def why_not(problem: Problem, units: list[Unit]) -> str | None:
    """Why no check can be computed for these units, or None."""
    if not problem.target_ids:
        return "the target has no tokens"
    if len(units) < 2:
        return "a prompt of one unit has nothing to compare it with"
    return None


def _rng(problem: Problem, units: list[Unit], seed: int, what: str) -> random.Random:
    """A generator seeded by the prompt and its units (never by the method), so every
    method of one prompt is checked against the same random sets and ablations."""
    return seeded(problem.ids, units, seed, what)


def _random_sets(rng: random.Random, n: int, k: int, count: int, top: list[int]) -> list[list[int]]:
    """`count` distinct random k-sets other than the top-k (all of them when fewer exist)."""
    exclude = {tuple(sorted(top))}
    possible = math.comb(n, k) - 1
    chosen: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    while len(chosen) < min(count, possible):
        candidate = tuple(sorted(rng.sample(range(n), k)))
        if candidate not in exclude and candidate not in seen:
            seen.add(candidate)
            chosen.append(list(candidate))
    return chosen


def plan_check(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    ranking: list[int],
    *,
    k: int | None = None,
    operator: str = DEFAULT_OPERATOR,
    seed: int = 0,
    random_sets: int = RANDOM_SETS,
    lds_ablations: int = LDS_ABLATIONS,
    full_known: bool = False,
) -> CheckPlan:
    """What the check will score: built by the check itself and by its cost estimate."""
    n = len(units)
    k_used = effective_k(n, k)
    top = list(ranking[:k_used])
    sets = _random_sets(_rng(problem, units, seed, "sets"), n, k_used, random_sets, top)
    ablations = half_ablations(_rng(problem, units, seed, "lds"), n, lds_ablations)
    full = mask_context(lm, problem, units, [], operator)
    removed = [top[:j] for j in range(1, k_used + 1)]  # the curve; its last is the deletion
    variants = [mask_context(lm, problem, units, r, operator) for r in removed]
    variants += [mask_context(lm, problem, units, s, operator) for s in sets]
    variants.append(keep_only(lm, problem, units, top, operator))
    variants += [mask_context(lm, problem, units, a, operator) for a in ablations]
    if not full_known:
        variants.insert(0, full)
    return CheckPlan(k_used, top, sets, ablations, variants, full, not full_known)


def check_cost(lm: LanguageModel, problem: Problem, plan: CheckPlan, batch_size: int) -> Cost:
    """The passes the check will make: one prefix-sharing scoring run of its variants."""
    return quantity.rows_cost(lm, problem, plan.variants, batch_size, plan.full)


def check_explanation(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    scores: list[float],
    ranking: list[int],
    *,
    granularity: str,
    k: int | None = None,
    operator: str = DEFAULT_OPERATOR,
    seed: int = 0,
    random_sets: int = RANDOM_SETS,
    lds_ablations: int = LDS_ABLATIONS,
    batch_size: int = 16,
    full_log_prob: float | None = None,
    token: int | None = None,
) -> FaithfulnessCheck:
    """Check an explanation (`scores` over `units`, `ranking` best first) against the model.

    `full_log_prob` is the unmasked context's summed log p(target) when the method
    scored it already (leave-one-out, xprompt): it is then not scored again. `token`
    checks one output token (a heatmap row) against that token's probability alone.
    """
    reason = why_not(problem, units)
    if token is not None and not 0 <= token < quantity.n_rows(problem):
        raise InvalidParameterError(
            f"token {token} is not an output token of this target "
            f"(0..{quantity.n_rows(problem) - 1}).",
            param="token",
        )
    if reason is not None:
        return FaithfulnessCheck(
            k or DEFAULT_K, granularity, operator, seed, f"not checked: {reason}",
            reason=reason, token=token,
        )  # fmt: skip
    before, started = lm.cost.snapshot(), time.perf_counter()
    known = full_log_prob is not None and token is None
    plan = plan_check(
        lm, problem, units, ranking, k=k, operator=operator, seed=seed,
        random_sets=random_sets, lds_ablations=lds_ablations, full_known=known,
    )  # fmt: skip
    with lm.lock, torch.no_grad():
        rows = quantity.score_rows(lm, problem, plan.variants, batch_size, reference=plan.full)
    rows = rows.double()
    if token is not None:
        rows = rows[:, token : token + 1]
    if plan.scores_full:
        full, rows = rows[0].sum().item(), rows[1:]
    else:
        full = float(full_log_prob)  # type: ignore[arg-type]
    width = rows.shape[1]
    totals = rows.sum(1).tolist()

    def ratio(total: float) -> float:
        return math.exp((total - full) / width)

    k_used, n_sets = plan.k, len(plan.random_sets)
    curve = [1.0] + [ratio(t) for t in totals[:k_used]]
    random_ratios = [ratio(t) for t in totals[k_used : k_used + n_sets]]
    sufficiency = ratio(totals[k_used + n_sets])
    ablated = totals[k_used + n_sets + 1 :]
    deletion = curve[-1]
    beats = sum(1 for r in random_ratios if r > deletion)
    lds = ablation_lds(scores, plan.ablations, [full - t for t in ablated])
    after = lm.cost.snapshot()
    return FaithfulnessCheck(
        k=k_used,
        granularity=granularity,
        operator=operator,
        seed=seed,
        verdict=verdict(k_used, granularity, deletion, beats, n_sets, lds, token),
        faithful=is_faithful(beats, n_sets, lds),
        deletion_ratio=deletion,
        random_ratios=random_ratios,
        beats_random=beats,
        sufficiency_ratio=sufficiency,
        curve=curve,
        lds=lds,
        lds_ablations=len(plan.ablations),
        forward_passes=after["forward_sequences"] - before["forward_sequences"],
        seconds=time.perf_counter() - started,
        token=token,
    )


def is_faithful(beats: int, n_sets: int, lds: float | None) -> bool:
    """Faithful: the top-k beats every random k-set and the scores agree with ablations."""
    return n_sets > 0 and beats == n_sets and lds is not None and lds >= FAITHFUL_LDS


def verdict(
    k: int,
    granularity: str,
    deletion: float,
    beats: int,
    n_sets: int,
    lds: float | None,
    token: int | None = None,
) -> str:
    """One line a person can act on, with the figures behind it."""
    noun = granularity if granularity != "regex" else "unit"
    what = f"p(output token {token})" if token is not None else "p(target)"
    removing = f"removing its top {k} {noun}{'s' if k != 1 else ''} lowers {what} to "
    removing += f"{deletion:.2f}× per token"
    agreement = "LDS n/a" if lds is None else f"LDS {lds:+.2f}"
    against = f"random {k}-{noun} sets"
    if is_faithful(beats, n_sets, lds):
        return f"faithful: {removing}, more than every one of {n_sets} {against} ({agreement})"
    if lds is not None and lds <= -FAITHFUL_LDS and beats < n_sets / 2:
        return (
            f"contradicted: its scores run against what removing units does ({agreement}); "
            f"{removing}, more than {beats} of {n_sets} {against}"
        )
    if beats >= PARTLY_SHARE * n_sets or (lds is not None and lds >= FAITHFUL_LDS):
        return f"partly faithful: {removing}, more than {beats} of {n_sets} {against} ({agreement})"
    return (
        f"no better than random: {removing}, more than only {beats} of {n_sets} {against} "
        f"({agreement})"
    )
