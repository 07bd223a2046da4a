"""The model core: what every room shares and nothing more.

The transformers model and tokenizer, the lock, the cost counter, embeddings and one
counted forward. The rooms (`generation`, `scoring`) work on a `ModelCore`, and the
`LanguageModel` façade is a `ModelCore` that hands calls on to them, so the rooms never
import the façade and the façade imports them: imports run one way.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass
from typing import Any

import torch

from .encoding import PromptEncoder
from .memory import return_large_blocks_to_the_os


@dataclass
class CostCounter:
    """Counts model passes so every method can report what it cost."""

    forward_calls: int = 0
    forward_sequences: int = 0
    backward_calls: int = 0

    def snapshot(self) -> dict[str, int]:
        return {
            "forward_calls": self.forward_calls,
            "forward_sequences": self.forward_sequences,
            "backward_calls": self.backward_calls,
        }

    def restore(self, snapshot: dict[str, int]) -> None:
        """Undo counting (for work that is the tool's, not a method's: the batching probe)."""
        for name, value in snapshot.items():
            setattr(self, name, value)


class ModelCore:
    """A causal LM with the bookkeeping attribution needs.

    Holds a lock because the web server and the CLI share one model: torch
    modules are not safe to drive from two threads at once.
    """

    def __init__(self, model: Any, tokenizer: Any, name: str = "model") -> None:
        self.model = model
        # Attribution differentiates with respect to inputs only; weights that ask for
        # gradients make autograd keep every layer's input for a gradient never used.
        self.model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.cost = CostCounter()
        self.lock = threading.RLock()
        self.encoder = PromptEncoder(tokenizer, self.max_context)
        # None until generate() is first tried; True once transformers' generate() failed
        # for this model and greedy decoding runs by whole forwards (see `generation`).
        self.generate_fallback: bool | None = None
        self.cache_argument = cache_argument(model)
        if self.device.type == "cpu":
            return_large_blocks_to_the_os()

    # ----- facts about the model -------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.embedding_matrix.dtype

    @property
    def max_context(self) -> int:
        n = getattr(self.model.config, "max_position_embeddings", None)
        if n:
            return int(n)
        return int(min(self.tokenizer.model_max_length, 1 << 20))

    @property
    def embedding_matrix(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight

    def is_special(self, token_id: int) -> bool:
        return token_id in self.encoder.special_ids

    def start_token_id(self) -> int | None:
        return self.encoder.start_token_id()

    # ----- the shared core: embeddings and counted forwards ------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)

    def context_embeds(self, ids: list[int], zero_positions: list[int]) -> torch.Tensor:
        """Input embeddings of `ids` with the rows at `zero_positions` set to zero: [T, H]."""
        embeds = self.embed(torch.tensor(ids, device=self.device))
        if zero_positions:
            keep = torch.ones(len(ids), 1, device=self.device, dtype=embeds.dtype)
            keep[list(zero_positions)] = 0.0
            embeds = embeds * keep
        return embeds

    def forward(self, **kwargs: Any) -> Any:
        """One counted model call; takes the usual transformers forward arguments."""
        key = "input_ids" if kwargs.get("input_ids") is not None else "inputs_embeds"
        self.cost.forward_calls += 1
        self.cost.forward_sequences += int(kwargs[key].shape[0])
        kwargs.setdefault("use_cache", False)
        return self.model(**kwargs)

    def forward_last(self, n: int, **kwargs: Any) -> Any:
        """A counted forward whose `.logits` hold only the last `n` positions.

        Only those positions go through the LM head (`logits_to_keep`), which saves
        batch x length x vocabulary floats on long prompts.
        """
        try:
            out = self.forward(logits_to_keep=n, **kwargs)
        except (TypeError, ValueError):  # a model that refuses the argument: compute all
            out = self.forward(**kwargs)
        if out.logits.shape[1] > n:  # ... or one that silently ignores it
            out.logits = out.logits[:, -n:, :]
        return out

    def count_backward(self, n: int = 1) -> None:
        self.cost.backward_calls += n

    def target_logprobs(
        self,
        ids: torch.Tensor,
        target_start: int,
        inputs_embeds: torch.Tensor | None = None,
        **forward_kwargs: Any,
    ) -> torch.Tensor:
        """Teacher-forced log p(ids[:, t] | ids[:, <t]) for t >= target_start: [batch, n_target].

        Logits are taken to float32 before the softmax, whatever the model's dtype.
        """
        n = ids.shape[1] - target_start
        if inputs_embeds is None:
            forward_kwargs["input_ids"] = ids
        else:
            forward_kwargs["inputs_embeds"] = inputs_embeds
        logits = self.forward_last(n + 1, **forward_kwargs).logits
        pred = logits[:, -(n + 1) : -1, :].float().log_softmax(-1)
        return pred.gather(-1, ids[:, target_start:].unsqueeze(-1)).squeeze(-1)

    def score(self, ids: list[int], target_start: int) -> torch.Tensor:
        """Teacher-forced log-probs of the tokens from target_start on (no gradient)."""
        t = torch.tensor([ids], device=self.device)
        with self.lock, torch.no_grad():
            return self.target_logprobs(t, target_start)[0]

    def cached_output(self, out: Any) -> Any:
        """The key/value cache a forward returned, under whichever name this transformers uses."""
        if self.cache_argument == "cache":
            return getattr(out, "cache", None)
        return getattr(out, "past_key_values", None)


def cache_argument(model: Any) -> str:
    """The name `model.forward` takes its key/value cache under: `cache` in current
    transformers (the old `past_key_values` is deprecated there, with a warning at every
    call), `past_key_values` in older releases and in models with their own code."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"
