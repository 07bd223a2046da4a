"""Bounded memory for gradients on long prompts.

A backward pass keeps every layer's activations from the forward: for a 2,000-
token prompt on a 135M model that is gigabytes. Two rules keep it bounded:

- `rows_per_batch`: how many gradient rows (integrated-gradient steps, heatmap
  rows) go through one backward, so the batch's tokens stay under a budget and
  memory does not grow with the number of steps;
- `recompute_layers`: above a token count, each decoder layer keeps only its
  input and recomputes the rest during backward (activation checkpointing), which
  trades about one extra forward for activations of one layer instead of all.

Both leave the numbers unchanged; only time and memory move.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

# Token rows per backward batch before a batch is split (a 135M model keeps about
# 0.3 MB of activations per token row; 4,096 rows is about 1.2 GB without recompute).
TOKEN_BUDGET = 4096
# From this many token rows in one backward, recompute layers instead of keeping them.
RECOMPUTE_FROM = 1024


def rows_per_batch(tokens_per_row: int, batch_size: int, budget: int = TOKEN_BUDGET) -> int:
    """How many rows of `tokens_per_row` tokens one backward takes (at least 1)."""
    return max(1, min(batch_size, budget // max(1, tokens_per_row)))


@contextlib.contextmanager
def recompute_layers(model: Any, tokens: int, threshold: int = RECOMPUTE_FROM) -> Iterator[bool]:
    """Within the block, checkpoint the decoder layers when `tokens` reaches `threshold`.

    Works on any architecture: the layer stack is the model's largest `ModuleList`
    (the decoder blocks of every causal LM in transformers), each block's forward is
    wrapped in `torch.utils.checkpoint` for the duration and restored after. Yields
    whether recompute is on.
    """
    stack = _layer_stack(model) if tokens >= threshold else None
    if not stack:
        yield False
        return
    for layer in stack:
        layer.forward = functools.partial(
            checkpoint, type(layer).forward.__get__(layer), use_reentrant=False
        )
    try:
        yield True
    finally:
        for layer in stack:
            del layer.forward


def _layer_stack(model: Any) -> list[torch.nn.Module] | None:
    """The model's decoder blocks: the `ModuleList` holding the most parameters."""
    best, best_size = None, 0
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 1:
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = module, size
    return list(best) if best is not None else None
