"""leave_one_out and random: known values, matrix consistency, operators, seeds."""

from __future__ import annotations

import pytest
import torch

from promptxray import attribute, explain
from promptxray.errors import InvalidParameterError
from promptxray.masking import mask_context
from promptxray.methods import get_method
from promptxray.targets import build_problem

PROMPT = "Name three colours of the rainbow. Be brief!"
TARGET = " Red, green and blue."


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, target=TARGET)


def naive_drop(lm, problem, units, i, operator):
    """log p(y|x) - log p(y|x without unit i), one plain sequence at a time."""
    ctx = mask_context(lm, problem, units, [i], operator)
    ids = torch.tensor([ctx.ids + problem.target_ids])
    with torch.no_grad():
        embeds = lm.embed(ids).clone()
        embeds[0, ctx.zero_positions] = 0.0
        masked = lm.target_logprobs(ids, len(ctx.ids), inputs_embeds=embeds)[0]
    return lm.score(problem.ids, problem.target_start) - masked


@pytest.mark.parametrize("granularity", ["token", "word", "sentence"])
@pytest.mark.parametrize("operator", ["delete", "replace", "zero"])
def test_leave_one_out_known_values(tiny_lm, problem, granularity, operator):
    units = problem.units(granularity)
    spec = get_method("leave_one_out")
    params = spec.resolve({"masking": operator, "batch_size": 4})
    out = spec.fn(tiny_lm, problem, units, params, matrix=False, progress=None)
    assert len(out.scores) == len(units)
    assert len(out.matrix) == len(problem.target_ids) and len(out.matrix[0]) == len(units)
    for i in range(len(units)):
        drop = naive_drop(tiny_lm, problem, units, i, operator)
        assert out.scores[i] == pytest.approx(float(drop.sum()), abs=1e-3)
        column = [row[i] for row in out.matrix]
        assert column == pytest.approx(drop.tolist(), abs=1e-4)
        # The score is the column sum of the matrix (the matrix is the same run).
        assert out.scores[i] == pytest.approx(sum(column), abs=1e-4)
    if granularity == "sentence":
        assert [u.text for u in units] == ["Name three colours of the rainbow.", "Be brief!"]


def test_leave_one_out_through_the_api(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "leave_one_out", "word", masking="replace")
    assert attr.metadata["params"] == {
        "masking": "replace",
        "batch_size": 16,
        "coarse": "none",
        "refine": 0,
        "top": 5,
        "slack": 1.0,
        "budget": 0.3,
    }
    assert attr.base_granularity == "word"
    assert attr.matrix is not None
    # The unmasked context plus one variant per unit, plus one shared-prefix pass.
    assert attr.metadata["forward_passes"] == len(attr.units) + 2
    assert attr.metadata["baseline_log_prob"] == pytest.approx(
        float(tiny_lm.score(problem.ids, problem.target_start).sum()), abs=1e-4
    )


def test_default_operator_is_delete(tiny_lm):
    attr = explain(PROMPT, model=tiny_lm, method="leave_one_out", target=TARGET)
    assert attr.metadata["params"]["masking"] == "delete"
    random = explain(PROMPT, model=tiny_lm, method="random").metadata["params"]
    assert random == {"seed": 0, "masking": "delete"}


def test_unknown_operator_lists_the_valid_ones(tiny_lm, problem):
    for method in ("leave_one_out", "random", "xprompt"):
        with pytest.raises(InvalidParameterError, match="delete, replace, zero"):
            attribute(tiny_lm, problem, method, "word", masking="mask")


def test_random_is_reproducible_by_seed(tiny_lm, problem):
    first = attribute(tiny_lm, problem, "random", "word", seed=7).scores
    again = attribute(tiny_lm, problem, "random", "word", seed=7).scores
    other = attribute(tiny_lm, problem, "random", "word", seed=8).scores
    default = attribute(tiny_lm, problem, "random", "word").scores
    assert first == again
    assert first != other
    assert default == attribute(tiny_lm, problem, "random", "word", seed=0).scores
    assert all(0.0 <= s < 1.0 for s in first)
    assert len(first) == len(problem.units("word"))
    with pytest.raises(InvalidParameterError, match="seed"):
        attribute(tiny_lm, problem, "random", "word", seed="x")


def test_random_differs_across_prompts_and_repeats_for_one(tiny_lm):
    """Seeded by (seed, prompt): equal-length prompts get different positions."""
    a = build_problem(tiny_lm, "Alpha beta gamma delta.", target=" ok")
    b = build_problem(tiny_lm, "Omega psi chi phi.", target=" ok")
    assert len(a.units("word")) == len(b.units("word")) == 4
    first = attribute(tiny_lm, a, "random", "word").scores
    assert first != attribute(tiny_lm, b, "random", "word").scores
    assert first == attribute(tiny_lm, a, "random", "word").scores


def test_leave_one_out_masks_regex_units_whole(tiny_lm, problem):
    """With a regex, the regex matches are what is masked: one variant per match."""
    pattern = r"[^.!]+[.!]"
    attr = attribute(tiny_lm, problem, "leave_one_out", "regex", pattern=pattern)
    units = problem.units("regex", pattern)
    assert [u.text for u in attr.units] == [u.text for u in units]
    assert attr.base_granularity == "regex" and attr.pattern == pattern
    assert attr.metadata["variants_scored"] == len(units) + 1  # the full prompt, then each unit
    for i in range(len(units)):
        expected = float(naive_drop(tiny_lm, problem, units, i, "delete").sum())
        assert attr.scores[i] == pytest.approx(expected, abs=1e-3)


def test_random_costs_no_model_pass(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "random", "token", seed=1)
    assert attr.metadata["forward_passes"] == 0 and attr.metadata["backward_passes"] == 0


@pytest.mark.integration
def test_default_model_knows_what_the_answer_rests_on(default_lm):
    prompt, target = "What is the capital of France?", " The capital of France is Paris."
    attr = explain(prompt, model=default_lm, method="leave_one_out", target=target)
    assert {unit.text for unit, _ in attr.top_k(2, by="support")} == {"capital", "France?"}
    # With k = 1 the search scores every single-unit mask (leave-one-out is one of its
    # starts), so its best L is the unmasked L minus the largest leave-one-out score.
    joint = explain(prompt, model=default_lm, method="xprompt", target=target, k=1)
    expected = attr.metadata["baseline_log_prob"] - max(attr.scores)
    assert joint.metadata["objective"] == pytest.approx(expected, abs=1e-3)
    assert [joint.units[i].text for i in joint.selected] == ["France?"]
