"""xprompt: the k units whose *joint* masking lowers log p(target) most, registered.

Single-unit methods miss units that matter only together ("publish" and "book":
masking either alone changes little, masking both changes the answer). Joint
attribution looks for the set S, |S| = k, minimising L(S), the target's
log-probability with the units of S masked. The joint methods are split by job:

- `joint_objective`: L(S) itself, scored in shared-prefix batches, remembered and
  budgeted, and its gradient dL/dm (the starts of both searches);
- `joint_schedule`: xprompt's anytime schedule (which k-set to score next);
- `joint_search`: xprompt's budgeted search (the schedule per set size, or every
  k-set) and the ranking of its result;
- `joint_paper`: `xprompt_paper`, the published Algorithm 1, as the reference;
- here: the `xprompt` method as callers see it, the whole prompt searched or, for
  long prompts, only the strongest coarse units (`coarse`), and its cost.
"""

from __future__ import annotations

from ..model import LanguageModel
from ..segments import Unit
from ..targets import Problem
from .base import Aggregation, Cost, Family, MethodOutput, ProgressFn, predicts, register
from .coarse import coarse_members, coarse_pass, coarse_pass_cost, sizes, strongest
from .joint_search import XPromptParams, run_search, search_cost


@register(
    "xprompt",
    Family.JOINT,
    params=XPromptParams,
    aggregation=Aggregation.FIXED,
    signed=True,
    description=(
        "The k units whose joint masking lowers log p(target) most: anytime budgeted "
        "search (gradient start, then swaps and jumps proposed by a surrogate fitted to "
        "every scored set); the set first by marginal contribution; k_max: every size."
    ),
    # 2: |g| start, pair-evidence swaps sampled without replacement;
    # 3: the anytime schedule (one surrogate-guided k-set per pass), k_max
    version=3,
    scores_unmasked=True,
)
def xprompt(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: XPromptParams,
    *,
    matrix: bool = False,
    progress: ProgressFn | None = None,
) -> MethodOutput:
    if params.coarse == "none":
        return run_search(lm, problem, units, params, progress)
    return _pruned(lm, problem, units, params, progress)


def _pruned(
    lm: LanguageModel,
    problem: Problem,
    units: list[Unit],
    params: XPromptParams,
    progress: ProgressFn | None,
) -> MethodOutput:
    """xprompt inside the strongest coarse units only (AttriBoT's pruning for long prompts).

    Every coarse unit is masked once (the coarse pass hierarchical leave-one-out
    makes too); the search then runs on the units of the `refine` strongest (and
    of the next ones while they hold fewer than k units), and the other units keep
    an equal share of their coarse unit's drop, marked as not refined. The budget
    is the search's own for that many units.
    """
    found = coarse_pass(
        lm, problem, units, params.coarse, params.masking, params.batch_size, progress
    )
    picked = found.strongest(params.refine, at_least=params.k)
    candidates = sorted(i for c in picked for i in found.members[c])
    inner = run_search(lm, problem, [units[i] for i in candidates], params, progress)
    scores = found.shared_scores(len(units))
    for i, score in zip(candidates, inner.scores, strict=True):
        scores[i] = score
    return MethodOutput(
        scores=scores,
        selected=[candidates[i] for i in inner.selected or []],
        search=inner.search,
        interactions=inner.interactions.relabel(candidates) if inner.interactions else None,
        hierarchy=found.hierarchy(len(picked), candidates, passes=1 + len(found.members)),
    )


@predicts("xprompt")
def xprompt_cost(
    lm: LanguageModel, problem: Problem, units: list[Unit], params: XPromptParams, matrix: bool
) -> Cost:
    """With `coarse`: the coarse pass, then the search's bound on the largest candidate set
    its `refine` coarse units could give."""
    if params.coarse == "none":
        return search_cost(lm, problem, units, params)
    members = coarse_members(problem, units, params.coarse)
    first = coarse_pass_cost(lm, problem, units, members, params.masking, params.batch_size)
    picked = strongest(members, sizes(members), params.refine, at_least=params.k)
    largest = sorted(i for c in picked for i in members[c])
    return (first + search_cost(lm, problem, [units[i] for i in largest], params)).bound()
