"""Bounded memory for gradients on long prompts.

A backward pass keeps every layer's activations from the forward. On the default
model (576 wide, 30 layers, float32) that is about 1 MB per token row, measured:
a 2,000-token prompt kept 2 GB, and integrated gradients, which batched all its
steps, kept steps times that. Two rules, both sized from the model itself (width x
layers x bytes per number), keep it bounded:

- how many gradient rows (integrated-gradient steps, heatmap rows) go through one
  backward: as many as stay under `BUDGET_BYTES`, so memory does not grow with the
  number of steps;
- when not even a few rows fit, `recompute_layers`: each decoder layer keeps only
  its input and recomputes the rest during backward (activation checkpointing),
  about one more forward for one layer's activations instead of all of them.

`plan_backward` makes both choices.

Both leave the numbers unchanged; only time and memory move.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

# Numbers a decoder layer keeps per token and per unit of width for backward (inputs of
# the norms, attention and MLP projections, the MLP's wider inner activations); fitted
# to the default model's measured 1 MB per token row.
_KEPT_PER_WIDTH = 16
# Activations one backward may keep; a batch that would keep more is split, or its
# layers recomputed.
BUDGET_BYTES = 512 * 2**20
_FEW_ROWS = 4
# Token rows (rows x sequence length) one CPU backward batch may hold: a forward and
# backward cost about three forwards, and the default model computes about 300
# positions a second on one contended core, so a batch takes about a second and a
# cancel (checked after each) lands within two. GPUs keep their batch size.
CPU_BACKWARD_TOKENS = 128


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_MMAP_FROM = 1 << 20


@functools.cache
def return_large_blocks_to_the_os() -> bool:
    """Make glibc hand every block of 1 MiB or more back to the OS when it is freed.

    glibc raises its mmap threshold each time a large block is freed, so after the
    first big backward, activations of a few MB come from the heap and stay
    resident when freed: a 2,000-token grad_norm then peaked 0.25-0.3 GB higher
    than the tensors it held. A fixed 1 MiB threshold removes that (measured: 491 ->
    230 MB over the loaded model) at no measurable cost in speed. Process-wide and
    once; a no-op off glibc (macOS, Windows, musl). Returns whether it applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM))
    except (OSError, AttributeError):
        return False


def _shape(model: Any) -> tuple[int, int, int]:
    """(width, layers, bytes per number) of a model, read from its weights."""
    embeddings = model.get_input_embeddings().weight
    stack = layer_stack(model)
    return embeddings.shape[1], len(stack) if stack else 1, embeddings.element_size()


def _bytes_per_token_row(model: Any, recompute: bool) -> int:
    width, layers, size = _shape(model)
    if recompute:  # every layer's input, plus one layer's activations during its recompute
        return (layers + _KEPT_PER_WIDTH) * width * size
    return _KEPT_PER_WIDTH * width * layers * size


def plan_backward(model: Any, tokens_per_row: int, batch_size: int) -> tuple[int, bool]:
    """(rows per backward, recompute or not) for rows of `tokens_per_row` tokens.

    On a CPU a batch holds at most `CPU_BACKWARD_TOKENS` token rows, so progress (and
    a cancel, checked after each batch) comes about every second. Then plain backward
    while at least a few rows fit in `BUDGET_BYTES` (recompute costs about a third
    more time on every row); otherwise recompute, with as many rows as fit that way.
    At least 1 row, at most `batch_size`. Rows are independent: only time and memory
    depend on this.
    """
    if next(model.parameters()).device.type == "cpu":
        batch_size = max(1, min(batch_size, CPU_BACKWARD_TOKENS // max(1, tokens_per_row)))
    plain = BUDGET_BYTES // max(1, tokens_per_row * _bytes_per_token_row(model, False))
    if plain >= min(batch_size, _FEW_ROWS):
        return min(batch_size, plain), False
    recomputed = BUDGET_BYTES // max(1, tokens_per_row * _bytes_per_token_row(model, True))
    return max(1, min(batch_size, recomputed)), True


@contextlib.contextmanager
def recompute_layers(model: Any, on: bool = True) -> Iterator[bool]:
    """Within the block, checkpoint the decoder layers (when `on`).

    Works on any architecture: the layer stack is the model's largest `ModuleList`
    (the decoder blocks of every causal LM in transformers), each block's forward is
    wrapped in `torch.utils.checkpoint` for the duration and restored after. Yields
    whether recompute is on.
    """
    stack = layer_stack(model) if on else None
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


def layer_stack(model: Any) -> list[torch.nn.Module] | None:
    """The model's decoder blocks: the `ModuleList` holding the most parameters."""
    best, best_size = None, 0
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 1:
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = module, size
    return list(best) if best is not None else None
