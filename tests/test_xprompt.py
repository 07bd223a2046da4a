"""xprompt: the gradient's sign, the search against brute force, the trajectory, errors."""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import make_tiny_lm

from promptxray import attribute
from promptxray.errors import InvalidParameterError
from promptxray.masking import mask_context
from promptxray.methods.joint_objective import unit_gradient
from promptxray.methods.joint_search import initial_selection
from promptxray.targets import build_problem

# Eight user tokens under the SmolLM2 tokenizer.
PROMPT = "The cat sat on the warm red mat"
TARGET = " It purred and slept."


@pytest.fixture(scope="module")
def sharp_lm():
    """The tiny random model with its weights scaled up (norms kept).

    At the usual 0.02 initialisation the tiny model's outputs are nearly uniform,
    so L moves by ~1e-5 between masks: float noise could then decide ties. Scaled
    by 16, masks change L by whole nats and gradients are clearly non-zero.
    """
    lm = make_tiny_lm(seed=1)
    with torch.no_grad():
        for name, param in lm.model.named_parameters():
            if "norm" not in name:
                param.mul_(16)
    return lm


@pytest.fixture(scope="module")
def problem(sharp_lm):
    p = build_problem(sharp_lm, PROMPT, target=TARGET)
    assert len(p.units("token")) == 8
    return p


def objective(lm, problem, units, chosen, operator="delete") -> float:
    """L(S) = log p(target | prompt with S masked), one plain sequence (no batching)."""
    ctx = mask_context(lm, problem, units, chosen, operator)
    ids = torch.tensor([ctx.ids + problem.target_ids])
    with torch.no_grad():
        embeds = lm.embed(ids).clone()
        embeds[0, ctx.zero_positions] = 0.0
        return float(lm.target_logprobs(ids, len(ctx.ids), inputs_embeds=embeds).sum())


def test_initial_selection_takes_the_largest_gradient_magnitude():
    """Masking moves m_u from 1 to 0, far beyond the first-order term's reach, so the
    start (like the paper's) trusts |g|, not its sign: unit 0's large negative g counts."""
    assert initial_selection([-5.0, 0.1, 3.0], 1) == [0]
    assert initial_selection([-5.0, 0.1, 3.0, 2.0], 2) == [0, 2]
    assert initial_selection([0.5, -4.0, 1.0, 2.0], 2) == [1, 3]
    assert initial_selection([1.0, -1.0, 1.0], 2) == [0, 1]


def test_gradient_sign_matches_finite_differences(sharp_lm, problem):
    """On the tiny model: shrinking unit u's embeddings by eps changes L by about -eps*g_u,
    so the unit initial_selection picks is the one whose (slight) masking moves L most."""
    units = problem.units("token")
    g = unit_gradient(sharp_lm, problem, units)
    ids = torch.tensor([problem.ids])
    eps = 1e-2
    changes = []
    with torch.no_grad():
        base = sharp_lm.embed(ids)
        full = float(sharp_lm.target_logprobs(ids, problem.target_start, inputs_embeds=base).sum())
        for u, unit in enumerate(units):
            scaled = base.clone()
            scaled[0, [problem.source_positions[t] for t in unit.tokens]] *= 1 - eps
            lp = sharp_lm.target_logprobs(ids, problem.target_start, inputs_embeds=scaled)
            changes.append(float(lp.sum()) - full)
            assert changes[-1] == pytest.approx(-eps * float(g[u]), rel=0.1, abs=2e-5)
    (first,) = initial_selection(g.tolist(), 1)
    assert abs(changes[first]) == max(abs(c) for c in changes) > 0


class CountingLM:
    """Counts every masked prompt the model scores (rows of score_variants)."""

    def __init__(self, lm) -> None:
        self.lm, self.rows = lm, 0
        self._original = lm.score_variants

    def __enter__(self):
        def counted(variants, *args, **kwargs):
            self.rows += len(variants)
            return self._original(variants, *args, **kwargs)

        self.lm.score_variants = counted
        return self

    def __exit__(self, *exc) -> None:
        del self.lm.score_variants


def brute_force(lm, problem, units, k, operator="delete") -> dict:
    return {
        s: objective(lm, problem, units, list(s), operator)
        for s in itertools.combinations(range(len(units)), k)
    }


@pytest.mark.parametrize("operator", ["delete", "zero"])
def test_exhaustive_equals_brute_force(sharp_lm, problem, operator):
    units = problem.units("token")
    values = brute_force(sharp_lm, problem, units, 2, operator)
    best = min(values, key=values.get)
    attr = attribute(
        sharp_lm, problem, "xprompt", "token", k=2, strategy="exhaustive", masking=operator
    )
    assert sorted(attr.selected) == list(best)
    assert attr.metadata["objective"] == pytest.approx(values[best], abs=1e-3)
    assert attr.metadata["spent"] == 1 + 28 + 2  # baseline, every pair, the two leave-outs


def test_search_reaches_the_optimum_on_small_prompts(sharp_lm, problem):
    units = problem.units("token")
    for k in (2, 3):
        values = brute_force(sharp_lm, problem, units, k)
        attr = attribute(sharp_lm, problem, "xprompt", "token", k=k, budget=1000)
        assert attr.metadata["objective"] == pytest.approx(min(values.values()), abs=1e-3)


@pytest.mark.parametrize("budget", [4, 9, 12, 18, 30, 200])
def test_budget_is_respected_exactly_and_never_worse_than_a_start(sharp_lm, problem, budget):
    with CountingLM(sharp_lm) as counter:
        attr = attribute(sharp_lm, problem, "xprompt", "token", k=3, budget=budget, check=False)
    meta = attr.metadata
    assert counter.rows == meta["spent"] <= budget
    assert sum(meta["passes_by_phase"].values()) == meta["spent"]
    starts = [s["objective"] for s in meta["starts"].values()]
    assert meta["objective"] <= min(starts) + 1e-9
    trajectory = meta["trajectory"]
    assert all(b[1] <= a[1] for a, b in zip(trajectory, trajectory[1:], strict=False))
    assert all(b[0] > a[0] for a, b in zip(trajectory, trajectory[1:], strict=False))
    assert meta["passes_by_phase"]["search"] >= 1  # the gradient start at least


def test_the_ranking_puts_the_set_first_by_marginal_contribution(sharp_lm, problem):
    units = problem.units("token")
    attr = attribute(sharp_lm, problem, "xprompt", "token", k=3, budget=1000)
    meta, chosen = attr.metadata, attr.selected
    assert attr.ranking("support")[:3] == chosen == attr.ranking("magnitude")[:3]
    full = objective(sharp_lm, problem, units, chosen)
    marginal = [
        objective(sharp_lm, problem, units, [v for v in chosen if v != u]) - full for u in chosen
    ]
    assert marginal == pytest.approx(meta["marginal_contributions"], abs=1e-3)
    assert marginal == sorted(marginal, reverse=True)
    # The rest follow by their leave-one-out drop.
    rest = attr.ranking("support")[3:]
    drops = [meta["baseline_objective"] - objective(sharp_lm, problem, units, [u]) for u in rest]
    assert drops == pytest.approx([attr.scores[u] for u in rest], abs=1e-3)
    assert drops == sorted(drops, reverse=True)


def test_result_records_the_search(sharp_lm, problem):
    attr = attribute(sharp_lm, problem, "xprompt", "word", k=3)
    meta = attr.metadata
    assert meta["budget"] == 2 * (len(attr.units) + 1)  # default: twice leave-one-out
    assert meta["baseline_objective"] == pytest.approx(
        float(sharp_lm.score(problem.ids, problem.target_start).sum()), abs=1e-4
    )
    assert meta["log_prob_drop"] == pytest.approx(
        meta["baseline_objective"] - meta["objective"], abs=1e-6
    )
    assert meta["starts"]["gradient"]["set"] == initial_selection(meta["gradient"], 3)
    assert meta["start"] in meta["starts"]
    assert meta["backward_passes"] == 1
    assert meta["params"]["masking"] == "delete"


def test_exhaustive_refuses_above_its_limit(tiny_lm):
    long = build_problem(tiny_lm, " ".join(f"w{i}" for i in range(40)), target=" ok")
    with pytest.raises(InvalidParameterError, match=r"C\(40, 3\) = 9880 .* refused above 5000"):
        attribute(tiny_lm, long, "xprompt", "word", k=3, strategy="exhaustive")


def test_paper_algorithm_scores_every_iteration(sharp_lm, problem):
    with CountingLM(sharp_lm) as counter:
        attr = attribute(
            sharp_lm, problem, "xprompt_paper", "token", k=2, iterations=12, check=False
        )
    meta = attr.metadata
    assert meta["params"]["masking"] == "zero" and meta["params"]["iterations"] == 12
    assert counter.rows == meta["spent"] == 2 + 12  # baseline, start, one per iteration
    g = [abs(v) for v in meta["gradient"]]
    start = sorted(sorted(range(len(g)), key=lambda u: -g[u])[:2])
    assert (
        meta["log_prob_drop"]
        >= meta["baseline_objective"]
        - objective(sharp_lm, problem, problem.units("token"), start, "zero")
        - 1e-3
    )


def test_k_equal_to_all_units(sharp_lm, problem):
    attr = attribute(sharp_lm, problem, "xprompt", "word", k=8)
    assert sorted(attr.selected) == list(range(8))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k": 9}, "only 8 units"),
        ({"k": 0}, "k .*greater than or equal to 1"),
        ({"budget": 1}, "budget"),
        ({"k": 3, "k_max": 2}, "k_max = 2 must lie between k = 3"),
        ({"k_max": 9}, "k_max = 9 must lie between"),
        ({"k_max": 3, "strategy": "exhaustive"}, "k_max works with strategy=search"),
        ({"k": 2.5}, "k .*integer"),
        ({"masking": "erase"}, "delete, replace, zero"),
        ({"iterations": 5}, "takes no parameter 'iterations'"),
    ],
)
def test_bad_parameters(sharp_lm, problem, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        attribute(sharp_lm, problem, "xprompt", "word", **params)


def test_pruning_with_every_coarse_unit_is_the_plain_search(tiny_lm, story_problem):
    plain = attribute(tiny_lm, story_problem, "xprompt", "word", k=2)
    pruned = attribute(tiny_lm, story_problem, "xprompt", "word", k=2, coarse="sentence", refine=99)
    assert pruned.selected == plain.selected
    assert pruned.scores == pytest.approx(plain.scores, abs=1e-5)
    assert pruned.inherited == set()
    # the only extra work is the coarse pass: the unmasked prompt and each sentence
    extra = pruned.metadata["forward_passes"] - plain.metadata["forward_passes"]
    assert pruned.metadata["hierarchy"]["coarse_passes"] == 1 + 4 and 0 < extra <= 5 + 1


def test_pruning_searches_inside_the_strongest_sentence_only(tiny_lm, story_problem):
    from promptxray import api
    from promptxray.methods.coarse import coarse_members

    units = story_problem.units("word")
    members = coarse_members(story_problem, units, "sentence")
    pruned = attribute(tiny_lm, story_problem, "xprompt", "word", k=2, coarse="sentence", refine=1)
    coarse = pruned.metadata["hierarchy"]["coarse_scores"]
    strongest = max(range(len(members)), key=lambda c: abs(coarse[c]))
    assert set(pruned.selected) <= set(members[strongest])
    assert pruned.metadata["refined"] == members[strongest]
    assert pruned.inherited == set(range(len(units))) - set(members[strongest])
    for c, group in enumerate(members):
        if c != strongest:  # the others share their sentence's drop equally
            assert [pruned.scores[i] for i in group] == pytest.approx(
                [coarse[c] / len(group)] * len(group), abs=1e-6
            )
    plain = attribute(tiny_lm, story_problem, "xprompt", "word", k=2)
    assert pruned.metadata["forward_passes"] < plain.metadata["forward_passes"]
    request = api.check_request(
        "xprompt", "word", params={"k": 2, "coarse": "sentence", "refine": 1}
    )
    cost = request.spec.predict(tiny_lm, story_problem, units, request.params, False)
    assert cost.upper_bound
    counted = (pruned.metadata["forward_passes"], pruned.metadata["forward_calls"])
    assert counted[0] <= cost.forward_sequences and counted[1] <= cost.forward_calls


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_larger_budget_scores_a_longer_prefix_and_is_never_worse(sharp_lm, problem, seed):
    """The schedule is one sequence that the budget truncates: each budget's trajectory is
    the start of the next one's, and its set is never better than a larger budget's."""
    runs = [
        attribute(sharp_lm, problem, "xprompt", "token", k=3, budget=b, seed=seed, check=False)
        for b in (6, 9, 14, 22, 40)
    ]
    for small, large in zip(runs, runs[1:], strict=False):
        assert large.metadata["objective"] <= small.metadata["objective"] + 1e-9
        searched = small.metadata["passes_by_phase"]["search"] + 1  # and the baseline
        curve = [p for p in small.metadata["trajectory"] if p[0] <= searched]
        prefix = large.metadata["trajectory"][: len(curve)]
        assert [p[0] for p in curve] == [p[0] for p in prefix]
        assert [p[1] for p in curve] == pytest.approx([p[1] for p in prefix], abs=1e-6)


def test_larger_budget_never_worse_on_other_tiny_models():
    """The same invariant on differently seeded tiny models, words and tokens."""
    from conftest import make_tiny_lm

    for model_seed in (2, 3):
        lm = make_tiny_lm(seed=model_seed)
        with torch.no_grad():
            for name, param in lm.model.named_parameters():
                if "norm" not in name:
                    param.mul_(16)
        p = build_problem(
            lm, "Write a short story about the doctor and his patient", target=" Once"
        )
        for granularity in ("word", "token"):
            values = [
                attribute(
                    lm, p, "xprompt", granularity, k=2, budget=b, seed=model_seed, check=False
                ).metadata["objective"]
                for b in (5, 8, 12, 20)
            ]
            assert values == sorted(values, reverse=True)


def test_k_max_finds_the_optimum_of_every_size(sharp_lm, problem):
    """With a budget that lets each size's schedule score every set, the best set of each
    size equals brute force; the main result is k's."""
    units = problem.units("token")
    attr = attribute(sharp_lm, problem, "xprompt", "token", k=2, k_max=3, budget=200, check=False)
    by_k = attr.metadata["best_by_k"]
    assert [len(s["set"]) for s in by_k] == [1, 2, 3]
    for size, found in zip((1, 2, 3), by_k, strict=True):
        values = brute_force(sharp_lm, problem, units, size)
        best = min(values, key=lambda s: (values[s], s))
        assert tuple(found["set"]) == best
        assert found["objective"] == pytest.approx(values[best], abs=1e-3)
    assert sorted(attr.selected) == by_k[1]["set"]
    assert attr.metadata["spent"] <= 3 * 200


def test_k_max_budget_is_per_size_and_exact(sharp_lm, problem):
    with CountingLM(sharp_lm) as counter:
        attr = attribute(
            sharp_lm, problem, "xprompt", "token", k=2, k_max=3, budget=10, check=False
        )
    meta = attr.metadata
    assert counter.rows == meta["spent"] <= 3 * 10 == meta["budget"]
    assert sum(meta["passes_by_phase"].values()) == meta["spent"]
    assert [len(s["set"]) for s in meta["best_by_k"]] == [1, 2, 3]
    request_cost = __import__("promptxray").api.check_request(
        "xprompt", "token", params={"k": 2, "k_max": 3, "budget": 10}
    )
    cost = request_cost.spec.predict(
        sharp_lm, problem, problem.units("token"), request_cost.params, False
    )
    assert meta["forward_passes"] <= cost.forward_sequences


def test_old_saved_search_without_best_by_k_loads():
    from promptxray.record import Search

    old = {
        "objective": -3.0,
        "baseline_objective": -1.0,
        "log_prob_drop": 2.0,
        "spent": 9,
        "starts": {"gradient": {"set": [0, 1], "objective": -2.0}},
    }
    search = Search.from_dict(old)
    assert search.best_by_k == [] and search.starts["gradient"].set == [0, 1]
    new = Search.from_dict({**old, "best_by_k": [{"set": [1], "objective": -1.5}]})
    assert new.best_by_k[0].set == [1] and new.best_by_k[0].objective == -1.5


def test_xprompt_records_interactions_that_equal_its_scored_sets(sharp_lm, problem):
    """Every recorded interaction is I = drop(ab) − drop(a) − drop(b) from sets scored
    independently; extra passes are counted outside the search's budget."""
    units = problem.units("token")
    plain = attribute(sharp_lm, problem, "xprompt", "token", k=2, budget=12, check=False)
    extra = attribute(
        sharp_lm, problem, "xprompt", "token", k=2, budget=12, interactions=8, check=False
    )
    assert plain.record.search.spent == extra.record.search.spent
    assert plain.selected == extra.selected
    found = extra.record.interactions
    assert 0 < found.extra_passes <= 8 and plain.record.interactions.extra_passes == 0
    assert len(found.pairs) >= len(plain.record.interactions.pairs)
    empty = objective(sharp_lm, problem, units, [])
    for pair in found.pairs:
        a, b = pair.units
        drop = {s: empty - objective(sharp_lm, problem, units, list(s)) for s in ((a,), (b,))}
        both = empty - objective(sharp_lm, problem, units, [a, b])
        assert pair.value == pytest.approx(both - drop[(a,)] - drop[(b,)], abs=1e-3)
