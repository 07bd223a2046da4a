"""The memory rules of gradient methods: bounded batches, recompute that changes nothing."""

from __future__ import annotations

import pytest
import torch

from promptxray import attribute, build_problem
from promptxray.model import memory


def test_long_rows_split_into_small_batches_and_recompute(tiny_lm, monkeypatch):
    per_row = memory._bytes_per_token_row(tiny_lm.model, recompute=False)
    monkeypatch.setattr(memory, "BUDGET_BYTES", 100 * per_row)
    monkeypatch.setattr(memory, "CPU_BACKWARD_TOKENS", 10**9)  # the memory rule alone
    assert memory.plan_backward(tiny_lm.model, 10, 16) == (10, False)  # 10 rows of 10 fit
    rows, recompute = memory.plan_backward(tiny_lm.model, 50, 16)  # only 2 plain rows fit
    assert recompute and rows >= 2
    assert memory.plan_backward(tiny_lm.model, 10_000, 16) == (1, True)


def test_a_cpu_batch_holds_few_token_rows_so_a_cancel_lands_soon(tiny_lm):
    rows, _ = memory.plan_backward(tiny_lm.model, 50, 16)
    assert rows == memory.CPU_BACKWARD_TOKENS // 50
    assert memory.plan_backward(tiny_lm.model, 5000, 16)[0] == 1


def test_recompute_and_small_batches_leave_the_numbers_unchanged(tiny_lm, monkeypatch):
    problem = build_problem(tiny_lm, "The sea was calm and the night was long.", target=" Yes.")
    before = attribute(tiny_lm, problem, "integrated_gradients", steps=6, matrix=True)
    calls = []
    original = memory.recompute_layers

    def spy(model, on=True):
        calls.append(on)
        return original(model, on)

    monkeypatch.setattr(memory, "BUDGET_BYTES", 1)  # one row a batch, layers recomputed
    monkeypatch.setattr("promptxray.model.language_model.recompute_layers", spy)
    after = attribute(tiny_lm, problem, "integrated_gradients", steps=6, matrix=True)
    assert calls and all(calls)
    assert after.metadata["backward_passes"] == 6 * len(problem.target_ids)
    assert after.scores == pytest.approx(before.scores, abs=1e-6)
    flat = [v for row in after.matrix for v in row]
    assert flat == pytest.approx([v for row in before.matrix for v in row], abs=1e-6)
    # the layers are back to their own forward afterwards
    assert all("forward" not in vars(layer) for layer in memory.layer_stack(tiny_lm.model))


def test_the_model_keeps_no_weight_gradients(tiny_lm):
    assert not any(p.requires_grad for p in tiny_lm.model.parameters())
    problem = build_problem(tiny_lm, "Hello there, friend.", target=" Hi.")
    attribute(tiny_lm, problem, "grad_norm")
    assert all(p.grad is None for p in tiny_lm.model.parameters())
    assert torch.is_grad_enabled()
