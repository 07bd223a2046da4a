"""xprompt: the gradient's sign, the search against brute force, the trajectory, errors."""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import make_tiny_lm

from promptxray import attribute
from promptxray.errors import InvalidParameterError
from promptxray.masking import mask_context
from promptxray.methods.joint import initial_selection, unit_gradient
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


def test_initial_selection_takes_the_largest_signed_gradient():
    """Sign convention: g_u = dL/dm_u and masking sets m_u from 1 to 0, so L changes by
    about -g_u. The units whose removal lowers L most have the largest *positive* g;
    a large negative g (here unit 0) means removing the unit would raise L."""
    assert initial_selection([-5.0, 0.1, 3.0], 1) == [2]
    assert initial_selection([-5.0, 0.1, 3.0, 2.0], 2) == [2, 3]
    assert initial_selection([1.0, 1.0, 1.0], 2) == [0, 1]


def test_gradient_sign_matches_finite_differences(sharp_lm, problem):
    """On the tiny model: shrinking unit u's embeddings by eps changes L by about -eps*g_u,
    so the unit initial_selection picks is the one whose (slight) masking lowers L most."""
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
    assert changes[first] == min(changes) and changes[first] < 0


@pytest.mark.parametrize("operator", ["delete", "zero"])
def test_search_finds_the_brute_force_optimum(sharp_lm, problem, operator):
    units = problem.units("token")
    values = {
        pair: objective(sharp_lm, problem, units, list(pair), operator)
        for pair in itertools.combinations(range(len(units)), 2)
    }
    best = min(values, key=values.get)
    hits = 0
    seeds = range(5)
    for seed in seeds:
        attr = attribute(
            sharp_lm, problem, "xprompt", "token", k=2, iterations=60, seed=seed, masking=operator
        )
        meta = attr.metadata
        chosen = tuple(attr.selected)
        assert meta["masking"] == operator
        assert meta["objective"] == pytest.approx(values[chosen], abs=1e-3)
        trajectory = meta["trajectory"]
        assert len(trajectory) == 61
        assert all(b <= a for a, b in zip(trajectory, trajectory[1:], strict=False))
        assert trajectory[-1] == meta["objective"]
        spent = meta["forward_pass_trajectory"]
        assert len(spent) == len(trajectory) and spent[0] == 2
        assert all(0 <= b - a <= 1 for a, b in zip(spent, spent[1:], strict=False))
        assert spent[-1] == meta["search_forward_passes"] <= 1 + 28  # 28 pairs, remembered
        hits += chosen == best
        # The gradient's first guess is not the optimum here: the swaps find it.
        assert tuple(meta["initial_selection"]) != best
    assert hits >= 4, f"found the optimum {best} in only {hits} of {len(seeds)} seeds"


def test_result_records_the_search(sharp_lm, problem):
    attr = attribute(sharp_lm, problem, "xprompt", "word", k=3, iterations=10, proposals_per_step=4)
    meta = attr.metadata
    units = attr.units
    assert len(attr.selected) == 3
    assert attr.scores == [1.0 if i in attr.selected else 0.0 for i in range(len(units))]
    assert meta["baseline_objective"] == pytest.approx(
        float(sharp_lm.score(problem.ids, problem.target_start).sum()), abs=1e-4
    )
    assert meta["log_prob_drop"] == pytest.approx(
        meta["baseline_objective"] - meta["objective"], abs=1e-6
    )
    assert meta["initial_selection"] == initial_selection(meta["gradient"], 3)
    # Baseline, the initial set, then at most B new sets per iteration.
    assert 2 <= meta["search_forward_passes"] <= 2 + 10 * 4
    assert meta["backward_passes"] == 1
    assert meta["masking"] == "delete" and meta["proposals_per_step"] == 4
    assert [u.text for u in units][: len(PROMPT.split())] == PROMPT.split()


def test_k_equal_to_all_units_needs_no_search(sharp_lm, problem):
    attr = attribute(sharp_lm, problem, "xprompt", "word", k=8, iterations=5)
    assert attr.selected == list(range(8))
    assert len(set(attr.metadata["trajectory"])) == 1


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k": 9}, "only 8 units"),
        ({"k": 0}, "k must be at least 1"),
        ({"iterations": -1}, "iterations"),
        ({"proposals_per_step": 0}, "proposals_per_step"),
        ({"k": 2.5}, "k must be an integer"),
        ({"masking": "erase"}, "delete, replace, zero"),
    ],
)
def test_bad_parameters(sharp_lm, problem, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        attribute(sharp_lm, problem, "xprompt", "word", **params)
