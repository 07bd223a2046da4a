"""score_variants (batched, prefix-cached) equals scoring each variant alone."""

from __future__ import annotations

import pytest
import torch

from promptxray.errors import InvalidParameterError
from promptxray.masking import MaskedContext, mask_context
from promptxray.model.scoring import batches_by_length
from promptxray.targets import build_problem

PROMPT = "Write a short poem about the quiet sea at night, please."


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, target=" The sea sleeps under silver light.")


def alone(lm, ctx: MaskedContext, target: list[int]) -> torch.Tensor:
    """Reference: one unpadded sequence, full forward, zeroing done by hand."""
    ids = torch.tensor([ctx.ids + target])
    with torch.no_grad():
        embeds = lm.embed(ids).clone()
        embeds[0, ctx.zero_positions] = 0.0
        return lm.target_logprobs(ids, len(ctx.ids), inputs_embeds=embeds)[0]


def variants(lm, problem, operator):
    units = problem.units("word")
    sets = [[], [0], [3], [len(units) - 1], [1, 4], [2, 5, 6], list(range(len(units)))]
    return [mask_context(lm, problem, units, s, operator) for s in sets]


@pytest.mark.parametrize("operator", ["delete", "replace", "zero"])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batched_equals_one_at_a_time(tiny_lm, problem, operator, batch_size):
    contexts = variants(tiny_lm, problem, operator)
    if operator == "delete":
        assert len({len(c.ids) for c in contexts}) > 3  # rows of different lengths
    target = problem.target_ids
    expected = torch.stack([alone(tiny_lm, c, target) for c in contexts])
    got = tiny_lm.score_variants(contexts, target, batch_size=batch_size, reference=contexts[0])
    assert got.dtype == torch.float32 and got.shape == (len(contexts), len(target))
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)
    # The first row is the unmasked context: the plain scorer agrees too.
    assert torch.allclose(got[0], tiny_lm.score(problem.ids, problem.target_start), atol=1e-4)


@pytest.mark.parametrize("operator", ["delete", "zero"])
def test_cache_on_and_off_agree(tiny_lm, problem, operator):
    contexts = variants(tiny_lm, problem, operator)
    target = problem.target_ids
    off = tiny_lm.score_variants(contexts, target, batch_size=4, use_cache=False)
    on = tiny_lm.score_variants(contexts, target, batch_size=4, reference=contexts[0])
    # A reference that shares little (everything masked) must still give the same numbers.
    far = tiny_lm.score_variants(contexts, target, batch_size=4, reference=contexts[-1])
    # ... and so must a reference that is not one of the variants.
    outside = tiny_lm.score_variants(contexts[:-1], target, batch_size=4, reference=contexts[-1])
    assert torch.allclose(on, off, atol=1e-4, rtol=0)
    assert torch.allclose(far, off, atol=1e-4, rtol=0)
    assert torch.allclose(outside, off[:-1], atol=1e-4, rtol=0)


def test_cache_costs_one_prefix_sequence_per_call(tiny_lm, problem):
    """The shared prefix runs once per call (one extra sequence), not once per batch."""
    contexts = variants(tiny_lm, problem, "delete")
    before = tiny_lm.cost.snapshot()
    tiny_lm.score_variants(contexts, problem.target_ids, batch_size=3)
    after = tiny_lm.cost.snapshot()
    calls = after["forward_calls"] - before["forward_calls"]
    assert after["forward_sequences"] - before["forward_sequences"] == len(contexts) + 1
    assert -(-len(contexts) // 3) + 1 <= calls <= len(contexts) + 1


def test_batches_group_rows_of_similar_length():
    # Longest first; a batch closes when full or when a row is under 3/4 of its longest.
    assert batches_by_length([100, 90, 80, 50, 40, 100], 3) == [[0, 5, 1], [2], [3, 4]]
    assert batches_by_length([10] * 5, 2) == [[0, 1], [2, 3], [4]]
    assert batches_by_length([], 4) == []


def test_target_log_distributions_agree_with_scores(tiny_lm, problem):
    units = problem.units("word")
    for operator in ("delete", "zero"):
        ctx = mask_context(tiny_lm, problem, units, [2], operator)
        dist = tiny_lm.target_log_distributions(ctx, problem.target_ids)
        assert dist.shape == (len(problem.target_ids), tiny_lm.embedding_matrix.shape[0])
        assert torch.allclose(dist.exp().sum(-1), torch.ones(len(problem.target_ids)), atol=1e-4)
        picked = dist.gather(-1, torch.tensor(problem.target_ids)[:, None])[:, 0]
        assert torch.allclose(picked, alone(tiny_lm, ctx, problem.target_ids), atol=1e-4)


def test_generate_from(tiny_lm, problem):
    units = problem.units("word")
    plain = mask_context(tiny_lm, problem, units, [], "delete")
    assert tiny_lm.generate_from(plain, 6) == tiny_lm.generate(problem.context_ids, 6)
    # The zero operator goes through inputs_embeds; check it against greedy by hand.
    zeroed = mask_context(tiny_lm, problem, units, [0, 2], "zero")
    greedy: list[int] = []
    for _ in range(5):
        dist = tiny_lm.target_log_distributions(zeroed, greedy + [0])
        greedy.append(int(dist[-1].argmax()))
    out = tiny_lm.generate_from(zeroed, 5)
    assert out == greedy[: len(out)]
    assert all(tiny_lm.is_special(t) for t in greedy[len(out) :])


def test_bad_input(tiny_lm, problem):
    contexts = variants(tiny_lm, problem, "delete")
    assert tiny_lm.score_variants([], problem.target_ids).shape == (0, len(problem.target_ids))
    with pytest.raises(InvalidParameterError):
        tiny_lm.score_variants(contexts, problem.target_ids, batch_size=0)
    with pytest.raises(InvalidParameterError):
        tiny_lm.score_variants([MaskedContext([], [], "delete")], problem.target_ids)
