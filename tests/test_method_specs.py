"""Method specs: declared parameters, aggregation rules, regroup refusal, the one ranking."""

from __future__ import annotations

import math

import pytest
import torch

from promptxray import Attribution, attribute, explain
from promptxray.errors import InvalidParameterError, RegroupRefusedError
from promptxray.methods import REGISTRY, get_method
from promptxray.methods.base import Aggregation
from promptxray.segments import Unit
from promptxray.targets import build_problem

PROMPT = "Name three colours of the rainbow. Be brief!"
TARGET = " Red, green and blue."


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, target=TARGET)


# ----- declared parameters ----------------------------------------------------------------
@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_every_method_rejects_an_unknown_parameter_naming_its_own(tiny_lm, problem, method):
    spec = get_method(method)
    with pytest.raises(InvalidParameterError) as info:
        attribute(tiny_lm, problem, method, "word", bogus=1)
    message = str(info.value)
    assert "'bogus'" in message and method in message
    for name in spec.params.model_fields:
        assert name in message  # the error names what the method does take


@pytest.mark.parametrize("method", sorted(REGISTRY))
def test_metadata_holds_exactly_the_resolved_parameters(tiny_lm, problem, method):
    spec = get_method(method)
    attr = attribute(tiny_lm, problem, method, "word", **_small(method))
    expected = spec.params(**_small(method)).model_dump(mode="json")
    assert attr.metadata["params"] == expected
    assert set(attr.metadata["params"]) == set(spec.params.model_fields)


def _small(method: str) -> dict:
    """Cheap settings for the slow methods (defaults for the rest)."""
    return {
        "integrated_gradients": {"steps": 3},
        "xprompt": {"k": 2},
        "xprompt_paper": {"k": 2, "iterations": 3},
    }.get(method, {})


def test_a_parameter_of_another_method_is_refused(tiny_lm, problem):
    """grad_norm used to accept and record k and masking; now it says what it takes."""
    with pytest.raises(InvalidParameterError, match="grad_norm takes no parameter 'k'"):
        attribute(tiny_lm, problem, "grad_norm", "word", k=3)
    with pytest.raises(InvalidParameterError, match="'n_steps'.*steps=20"):
        explain(PROMPT, model=tiny_lm, method="integrated_gradients", target=TARGET, n_steps=50)


def test_declared_steps_are_the_steps_run(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "integrated_gradients", "token", steps=5, batch_size=64)
    assert attr.metadata["params"]["steps"] == 5
    # one batched row per step, then one forward of the path's two ends (completeness gap)
    assert attr.metadata["forward_passes"] == 5 + 2


def test_out_of_range_and_wrong_type_are_one_clear_error(tiny_lm, problem):
    with pytest.raises(InvalidParameterError, match=r"integrated_gradients: steps .*0"):
        attribute(tiny_lm, problem, "integrated_gradients", "word", steps=0)
    with pytest.raises(InvalidParameterError, match="masking"):
        attribute(tiny_lm, problem, "leave_one_out", "word", masking="blur")
    with pytest.raises(InvalidParameterError, match="seed"):
        attribute(tiny_lm, problem, "random", "word", seed="x")


# ----- aggregation ------------------------------------------------------------------------
def test_grad_norm_word_score_is_the_norm_of_the_words_gradient(tiny_lm, problem):
    """A word's grad_norm is ||concat of its tokens' gradients|| = sqrt(sum ||g_t||^2)."""
    attr = attribute(tiny_lm, problem, "grad_norm", "word")
    ids = torch.tensor([problem.ids])
    embeds = tiny_lm.embed(ids).detach().requires_grad_(True)
    logprobs = tiny_lm.target_logprobs(ids, problem.target_start, inputs_embeds=embeds)
    (grad,) = torch.autograd.grad(logprobs.sum(), embeds)
    sources = problem.source_positions
    multi = 0
    for unit, score in zip(attr.units, attr.scores, strict=True):
        rows = grad[0, [sources[t] for t in unit.tokens]]
        assert score == pytest.approx(float(rows.flatten().norm()), rel=1e-4)
        multi += len(unit.tokens) > 1
    assert multi  # the prompt has words of several tokens, where sum and norm differ


def test_grad_x_input_word_scores_sum_their_tokens(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "grad_x_input", "token")
    words = attr.aggregate("word")
    for unit, score in zip(words.units, words.scores, strict=True):
        assert score == pytest.approx(sum(attr.base_scores[t] for t in unit.tokens), abs=1e-6)


def test_a_masking_result_is_never_relabelled(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "leave_one_out", "sentence")
    assert attr.aggregation == Aggregation.FIXED
    for other in ("word", "token", "paragraph"):
        with pytest.raises(RegroupRefusedError, match="recompute it at granularity"):
            attr.aggregate(other)
    assert attr.aggregate("sentence").scores == attr.scores
    with pytest.raises(RegroupRefusedError):
        attr.aggregate("regex", r"\w+")


def test_the_rule_survives_a_json_round_trip(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "grad_norm", "word")
    again = Attribution.from_json(attr.to_json())
    assert again == attr and again.aggregation == "norm" and again.signed is False
    assert again.aggregate("sentence").scores == pytest.approx(attr.aggregate("sentence").scores)


# ----- the one ranking ----------------------------------------------------------------------
def _attr(scores, selected=None, signed=True) -> Attribution:
    units = [Unit(text=f"u{i}", role="user", span=(i, i + 1), tokens=[i]) for i in scores]
    return Attribution(
        prompt="abcdef"[: len(scores)],
        system_prompt=None,
        output="x",
        target_span=(0, 1),
        target_tokens=["x"],
        method="test",
        base_granularity="token",
        base_units=units,
        base_scores=list(scores.values()),
        base_selected=selected,
        signed=signed,
    )


def test_ranking_support_and_magnitude():
    attr = _attr({0: 0.1, 1: 0.9, 2: -2.0, 3: 0.5})
    assert attr.ranking("support") == [1, 3, 0, 2]  # what masking removes: raises p most
    assert attr.ranking("magnitude") == [2, 1, 3, 0]  # what lists show, sign kept
    assert [s for _, s in attr.top_k(2)] == [-2.0, 0.9]


def test_ranking_puts_the_joint_set_first_in_its_order():
    attr = _attr({0: 0.1, 1: 0.9, 2: -2.0, 3: 0.5}, selected=[2, 0])
    assert attr.ranking("support") == [2, 0, 1, 3]
    assert attr.ranking("magnitude") == [2, 0, 1, 3]


def test_ranking_ties_keep_reading_order():
    assert _attr({0: 1.0, 1: 1.0, 2: 1.0}).ranking() == [0, 1, 2]
    assert math.isclose(_attr({0: 1.0}).scores[0], 1.0)
