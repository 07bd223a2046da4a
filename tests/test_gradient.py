"""Gradient methods against hand-computed autograd values on the tiny model."""

import math

import pytest
import torch

from promptxray import attribute, build_problem, explain


def _reference_grads(lm, problem):
    """d sum_t log p(y_t) / d embeddings, computed directly on the HF model."""
    ids = torch.tensor([problem.ids])
    emb = lm.model.get_input_embeddings()(ids).detach().requires_grad_(True)
    logits = lm.model(inputs_embeds=emb).logits[0]
    logp = torch.log_softmax(logits, -1)
    start = problem.target_start
    total = sum(logp[t - 1, problem.ids[t]] for t in range(start, len(problem.ids)))
    total.backward()
    return emb.grad[0], emb.detach()[0], float(total.detach())


@pytest.fixture(scope="module")
def five_token_problem(tiny_lm):
    # No chat template path needed for the arithmetic; the template tokens are just
    # more inputs. Five user tokens: "Name", " three", " red", " things", ".".
    problem = build_problem(tiny_lm, "Name three red things.", target=" Apples and blood")
    assert len(problem.source_positions) == 5
    return problem


def test_grad_x_input_matches_hand_computed_autograd(tiny_lm, five_token_problem):
    p = five_token_problem
    grad, emb, _ = _reference_grads(tiny_lm, p)
    expected = [(grad[i] * emb[i]).sum().item() for i in p.source_positions]
    a = attribute(tiny_lm, p, "grad_x_input", granularity="token")
    assert a.scores == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert a.metadata["backward_passes"] == 1 and a.metadata["forward_calls"] == 1


def test_grad_norm_matches_hand_computed_autograd(tiny_lm, five_token_problem):
    p = five_token_problem
    grad, _, _ = _reference_grads(tiny_lm, p)
    expected = [grad[i].norm().item() for i in p.source_positions]
    a = attribute(tiny_lm, p, "grad_norm", granularity="token")
    assert a.scores == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert all(s >= 0 for s in a.scores)


def test_matrix_rows_sum_to_sequence_scores_for_linear_method(tiny_lm, five_token_problem):
    a = attribute(tiny_lm, five_token_problem, "grad_x_input", granularity="token", matrix=True)
    assert len(a.matrix) == len(five_token_problem.target_ids)
    column_sums = [sum(col) for col in zip(*a.matrix, strict=True)]
    assert column_sums == pytest.approx(a.scores, rel=1e-4, abs=1e-6)
    # the whole matrix costs one backward per batch of target tokens, not one per token
    assert a.metadata["backward_passes"] == 1


def test_integrated_gradients_completeness(tiny_lm, five_token_problem):
    """IG sums to L(x) - L(baseline) where the baseline zeroes the source embeddings."""
    p = five_token_problem
    a = attribute(tiny_lm, p, "integrated_gradients", granularity="token", steps=64)
    ids = torch.tensor([p.ids])
    emb = tiny_lm.model.get_input_embeddings()(ids).detach()
    with torch.no_grad():
        full = tiny_lm.target_logprobs(ids, p.target_start, inputs_embeds=emb).sum().item()
        emb[0, p.source_positions] = 0
        base = tiny_lm.target_logprobs(ids, p.target_start, inputs_embeds=emb).sum().item()
    assert sum(a.scores) == pytest.approx(full - base, rel=0.02, abs=1e-3)


def test_aggregation_preserves_sums_at_every_granularity(tiny_lm):
    prompt = "First line here.\nSecond one, with commas!\n\nA new paragraph. Two sentences."
    a = explain(
        prompt,
        model=tiny_lm,
        method="grad_x_input",
        granularity="token",
        matrix=True,
        max_new_tokens=6,
    )
    total = sum(a.scores)
    for granularity, pattern in [
        ("word", None),
        ("sentence", None),
        ("line", None),
        ("paragraph", None),
        ("regex", r"[A-Z]\w+"),
    ]:
        b = a.aggregate(granularity, pattern)
        assert math.isclose(sum(b.scores), total, rel_tol=1e-9, abs_tol=1e-9)
        assert len(b.units) < len(a.units)
        for row_a, row_b in zip(a.matrix, b.matrix, strict=True):
            assert math.isclose(sum(row_a), sum(row_b), rel_tol=1e-9, abs_tol=1e-9)
    assert [u.text for u in a.aggregate("paragraph").units] == [
        "First line here.\nSecond one, with commas!",
        "A new paragraph. Two sentences.",
    ]
