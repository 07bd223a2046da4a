"""Greedy generation from token ids or from a masked context's embeddings.

Generation is deterministic (greedy), so "mask these units and regenerate" shows
the effect of the mask and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from ..errors import PromptTooLongError

if TYPE_CHECKING:
    from .core import ModelCore


def greedy(
    lm: ModelCore,
    ids: list[int],
    zero_positions: list[int] | None,
    max_new_tokens: int,
    on_token: Callable[[int], None] | None,
    keep_stop: bool = False,
) -> list[int]:
    """Greedy decoding from token ids, or from their embeddings when some are zeroed.

    Trailing end-of-sequence tokens are dropped; `keep_stop=True` keeps the one
    token that ended an early stop (it is part of what the model said).
    """
    room = lm.max_context - len(ids)
    if room <= 0:
        raise PromptTooLongError(
            f"The prompt is {len(ids)} tokens; this model reads at most {lm.max_context}."
        )
    steps = max(1, min(max_new_tokens, room))
    with lm.lock, torch.no_grad():
        if zero_positions:
            inputs = {"inputs_embeds": lm.context_embeds(list(ids), list(zero_positions))[None]}
        else:
            inputs = {"input_ids": torch.tensor([ids], device=lm.device)}
        if lm.generate_fallback:
            new = _step_by_step(lm, ids, zero_positions or [], steps, on_token)
        else:
            try:
                new = _generate(lm, inputs, steps, on_token)
                lm.generate_fallback = False
            except _GENERATE_FAILURES:
                if lm.generate_fallback is False:  # it worked before: a real error
                    raise
                lm.generate_fallback = True
                new = _step_by_step(lm, ids, zero_positions or [], steps, on_token)
    lm.cost.forward_calls += len(new)
    lm.cost.forward_sequences += len(new)
    stop = None
    while new and lm.is_special(new[-1]):
        stop = new.pop()
    if keep_stop and stop is not None:
        new.append(stop)
    return new


# What transformers' generate() raises for models whose cache it cannot drive (e.g.
# recurrent_gemma's mixed recurrent/attention cache in transformers 5).
_GENERATE_FAILURES = (ValueError, AttributeError, TypeError, NotImplementedError)


def _generate(
    lm: ModelCore,
    inputs: dict[str, torch.Tensor],
    steps: int,
    on_token: Callable[[int], None] | None,
) -> list[int]:
    """Greedy new tokens from transformers' generate() (with its cache: the fast path)."""
    first = next(iter(inputs.values()))
    out = lm.model.generate(
        **inputs,
        attention_mask=torch.ones(first.shape[:2], dtype=torch.long, device=lm.device),
        max_new_tokens=steps,
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
        pad_token_id=lm.tokenizer.pad_token_id,
        streamer=_CallbackStreamer(on_token) if on_token else None,
    )
    # Given ids, generate returns prompt + new tokens; given only embeddings, just the new.
    given = inputs.get("input_ids")
    return out[0, given.shape[1] :].tolist() if given is not None else out[0].tolist()


def _step_by_step(
    lm: ModelCore,
    ids: list[int],
    zero_positions: list[int],
    steps: int,
    on_token: Callable[[int], None] | None,
) -> list[int]:
    """Greedy decoding by whole forwards, no cache: slower (quadratic in the output), but
    it needs nothing from the model but its forward, so every causal LM can generate."""
    new: list[int] = []
    for _ in range(steps):
        embeds = lm.context_embeds(list(ids) + new, zero_positions)[None]
        logits = lm.model(inputs_embeds=embeds, use_cache=False).logits[0, -1]
        token = int(logits.float().argmax())
        new.append(token)
        if on_token:
            on_token(token)
        if lm.is_special(token):
            break
    return new


class _CallbackStreamer:
    """Adapter so generate() can report each new token (the first put is the prompt)."""

    def __init__(self, on_token: Callable[[int], None]) -> None:
        self.on_token = on_token
        self.seen_prompt = False

    def put(self, value: torch.Tensor) -> None:
        if not self.seen_prompt:
            self.seen_prompt = True
            return
        for token in value.reshape(-1).tolist():
            self.on_token(int(token))

    def end(self) -> None:
        pass
