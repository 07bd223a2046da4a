"""The heatmap near its bound: shared forwards, prefix-only rows, forward-mode unit columns.

Every number is checked against an independent computation: one full-sequence
forward and backward per target token, straight on the transformers model.
"""

import pytest
import torch

from promptxray import Attribution, api, attribute, build_problem
from promptxray.methods import gradient_rows, unit_heatmap
from promptxray.model import memory

PROMPT = "The red fox ran home. It was late and cold. The owl watched from a tree."
TARGET = " The fox got home safely before midnight, and the owl flew off into the dark woods."


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, target=TARGET)


def _reference_rows(lm, problem, alpha=1.0):
    """Per target token j: (d log p_j / d embeddings, embeddings) on the whole sequence,
    with the source embeddings scaled by `alpha`; one forward and backward per row."""
    ids = torch.tensor([problem.ids])
    start = problem.target_start
    full = lm.model.get_input_embeddings()(ids).detach()[0]
    scale = torch.ones(len(problem.ids), 1)
    scale[problem.source_positions] = alpha
    rows = []
    for j in range(len(problem.target_ids)):
        emb = (full * scale).unsqueeze(0).requires_grad_(True)
        logp = torch.log_softmax(lm.model(inputs_embeds=emb).logits[0], -1)
        logp[start + j - 1, problem.ids[start + j]].backward()
        rows.append(emb.grad[0])
    return rows, full


def _sources(problem, per_position):
    return [per_position[p].item() for p in problem.source_positions]


@pytest.mark.parametrize("batch_size", [16, 2])
def test_token_matrix_equals_one_backward_per_row_on_the_whole_sequence(
    tiny_lm, problem, batch_size
):
    grads, emb = _reference_rows(tiny_lm, problem)
    dot = attribute(tiny_lm, problem, "grad_x_input", "token", matrix=True, batch_size=batch_size)
    norm = attribute(tiny_lm, problem, "grad_norm", "token", matrix=True, batch_size=batch_size)
    assert len(dot.matrix) == len(problem.target_ids) > 2 * 2
    for row_dot, row_norm, g in zip(dot.matrix, norm.matrix, grads, strict=True):
        assert row_dot == pytest.approx(_sources(problem, (g * emb).sum(-1)), abs=1e-5)
        assert row_norm == pytest.approx(_sources(problem, g.norm(dim=-1)), abs=1e-5)
    # the whole-output scores are still one backward of the summed log-prob
    total = sum(grads)
    assert dot.scores == pytest.approx(_sources(problem, (total * emb).sum(-1)), abs=1e-5)


def test_integrated_gradients_matrix_equals_the_reference_path_sum(tiny_lm, problem):
    steps = 3
    ig = attribute(tiny_lm, problem, "integrated_gradients", "token", matrix=True, steps=steps)
    expected = None
    for i in range(steps):
        grads, emb = _reference_rows(tiny_lm, problem, alpha=(i + 0.5) / steps)
        rows = [(g * emb).sum(-1) / steps for g in grads]
        if expected is not None:
            rows = [a + b for a, b in zip(expected, rows, strict=True)]
        expected = rows
    for row, want in zip(ig.matrix, expected, strict=True):
        assert row == pytest.approx(_sources(problem, want), abs=1e-5)


def test_each_block_runs_forward_once_on_its_own_prefix(tiny_lm, problem):
    n = len(problem.target_ids)
    blocks = gradient_rows.plan_token_blocks(tiny_lm, problem, 4)
    assert [b.first for b in blocks] == list(range(0, n, 4))
    assert blocks[0].length == problem.target_start + 4  # early rows stop early
    assert blocks[-1].length == len(problem.ids)
    a = attribute(tiny_lm, problem, "grad_norm", "token", matrix=True, batch_size=4)
    assert a.metadata["forward_calls"] == len(blocks) == -(-n // 4)
    assert a.metadata["backward_passes"] == sum(b.backward_calls for b in blocks)


def test_recomputed_layers_give_the_same_matrix(tiny_lm, problem, monkeypatch):
    before = attribute(tiny_lm, problem, "grad_x_input", "token", matrix=True, batch_size=4)
    monkeypatch.setattr(memory, "BUDGET_BYTES", 1)  # one row a backward, layers recomputed
    assert all(b.recompute for b in gradient_rows.plan_token_blocks(tiny_lm, problem, 4))
    after = attribute(tiny_lm, problem, "grad_x_input", "token", matrix=True, batch_size=4)
    assert after.metadata["backward_passes"] == len(problem.target_ids)
    flat = [v for row in after.matrix for v in row]
    assert flat == pytest.approx([v for row in before.matrix for v in row], abs=1e-6)


def test_sentence_heatmap_by_forward_mode_equals_token_rows_summed(tiny_lm, problem):
    sentences = problem.units("sentence")
    assert 3 * len(sentences) <= len(problem.target_ids)  # where the unit columns apply
    direct = attribute(tiny_lm, problem, "grad_x_input", "sentence", matrix=True)
    rows = attribute(tiny_lm, problem, "grad_x_input", "sentence", matrix=True, unit_heatmap=False)
    assert direct.matrix_granularity == "sentence" and rows.matrix_granularity is None
    assert "forward-mode" in direct.metadata["heatmap"]
    step = unit_heatmap._unit_rows_per_call(tiny_lm, problem, 16)  # tangents per call
    assert 1 < step < len(sentences) or step >= len(sentences)
    calls = -(-len(sentences) // step)  # the scores' one row, then one call per chunk
    assert direct.metadata["forward_passes"] == 1 + calls
    flat = [v for row in direct.matrix for v in row]
    assert flat == pytest.approx([v for row in rows.matrix for v in row], abs=1e-5)
    assert direct.scores == pytest.approx(rows.scores, abs=1e-6)
    # columns still sum to the scores (linearity), as for the token rows
    sums = [sum(col) for col in zip(*direct.matrix, strict=True)]
    assert sums == pytest.approx(direct.scores, abs=1e-5)


def test_a_unit_heatmap_exists_only_at_its_units_and_says_so(tiny_lm, problem):
    direct = attribute(tiny_lm, problem, "grad_x_input", "sentence", matrix=True)
    words = direct.aggregate("word")
    assert words.matrix is None and words.scores  # scores regroup; the heatmap does not
    assert "computed at sentence units" in words.matrix_note()
    assert words.aggregate("sentence").matrix == direct.matrix
    assert direct.matrix_note() is None
    again = Attribution.from_dict(direct.to_dict())
    assert again.matrix_granularity == "sentence" and again.matrix == direct.matrix


def test_unit_heatmap_predicted_passes_equal_counted(tiny_lm, problem):
    request = api.check_request("grad_x_input", "sentence", check=False)  # the heatmap alone
    estimate = api.estimate(tiny_lm, problem, request, matrix=True, per_token=1e-4)
    result = attribute(tiny_lm, problem, "grad_x_input", "sentence", matrix=True, check=False)
    meta = result.metadata
    counted = (meta["forward_passes"], meta["forward_calls"], meta["backward_passes"])
    cost = estimate.cost
    assert (cost.forward_sequences, cost.forward_calls, cost.backward_calls) == counted


def test_without_forward_mode_the_token_rows_are_used(tiny_lm, problem, monkeypatch):
    import torch.autograd.forward_ad as forward_ad

    def refuse(*args, **kwargs):
        raise NotImplementedError("no forward-mode derivative here")

    monkeypatch.setattr(forward_ad, "make_dual", refuse)
    a = attribute(tiny_lm, problem, "grad_x_input", "sentence", matrix=True)
    assert a.matrix_granularity is None and "heatmap" not in a.metadata
    assert len(a.matrix) == len(problem.target_ids) and len(a.matrix[0]) == len(a.units)


def test_few_target_tokens_keep_the_token_rows(tiny_lm):
    short = build_problem(tiny_lm, PROMPT, target=" Home.")
    a = attribute(tiny_lm, short, "grad_x_input", "sentence", matrix=True)
    assert a.matrix_granularity is None
    assert a.aggregate("word").matrix is not None


def test_a_forward_mode_call_checks_for_cancel_between_layers(problem):
    """One call batches every tangent (several seconds on a CPU), so the progress
    callback runs before each decoder layer: a callback that raises (the server's
    cancel) stops the call inside it, before the last layer has run."""
    from conftest import make_tiny_lm

    lm = make_tiny_lm(layers=6)
    sentences = problem.units("sentence")
    assert unit_heatmap._unit_rows_per_call(lm, problem, 16) >= len(sentences)  # one call
    layers_run = []
    for layer in memory.layer_stack(lm.model):
        layer.register_forward_hook(lambda *_: layers_run.append(1))  # a layer finished
    calls = []

    class Cancelled(Exception):
        pass

    def progress(done, total):
        calls.append((done, total))
        if len(calls) == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        unit_heatmap._unit_columns(lm, problem, sentences, 16, progress)
    assert calls == [(0, len(sentences))] * 3  # all inside the first (and only) call
    assert len(layers_run) == 2 < 6  # the third layer never ran
    # and with no one to tell, no hooks stay behind: the same call runs to the end
    assert unit_heatmap._unit_columns(lm, problem, sentences, 16, None).shape[0] == len(sentences)
    assert len(layers_run) == 2 + 6
