"""`LanguageModel`: the thin façade every method, view and job talks to.

It holds the transformers model and tokenizer, the cost counter and the lock, and
the few operations every room shares (embeddings, one counted forward, teacher-
forced log-probs). Encoding, generation and variant scoring live in their own
rooms (`encoding`, `generation`, `scoring`); this class only hands calls on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..roles import Message, Span
from .devices import Placement, dtype_name
from .encoding import PromptEncoder, PromptEncoding
from .generation import greedy
from .heartbeat import beat_between_layers
from .memory import plan_backward, recompute_layers, return_large_blocks_to_the_os
from .scoring import BatchingSupport, MaskedContext, VariantScorer


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


class LanguageModel:
    """A causal LM with the bookkeeping attribution needs.

    Holds a lock because the web server and the CLI share one model: torch
    modules are not safe to drive from two threads at once.
    """

    def __init__(
        self, model: Any, tokenizer: Any, name: str = "model", placement: Placement | None = None
    ) -> None:
        self.model = model
        # Attribution differentiates with respect to inputs only; weights that ask for
        # gradients make autograd keep every layer's input for a gradient never used.
        self.model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.cost = CostCounter()
        self.lock = threading.RLock()
        self.encoder = PromptEncoder(tokenizer, self.max_context)
        self.scorer = VariantScorer(self)
        self._placement = placement
        # None until generate() is first tried; True once transformers' generate() failed
        # for this model and greedy decoding runs by whole forwards (see `generation`).
        self.generate_fallback: bool | None = None
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
    def placement_note(self) -> str:
        """Where the model runs, for the user ("cpu float32 (device and dtype picked by auto)")."""
        if self._placement is not None:
            return self._placement.describe()
        return f"{self.device} {dtype_name(self.dtype)}"

    @property
    def max_context(self) -> int:
        n = getattr(self.model.config, "max_position_embeddings", None)
        if n:
            return int(n)
        return int(min(self.tokenizer.model_max_length, 1 << 20))

    @property
    def has_chat_template(self) -> bool:
        return self.encoder.has_chat_template

    @property
    def embedding_matrix(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight

    @property
    def batching_support(self) -> BatchingSupport:
        """Whether padded batches and the shared-prefix cache are exact for this model."""
        return self.scorer.support

    def is_special(self, token_id: int) -> bool:
        return token_id in self.encoder.special_ids

    def start_token_id(self) -> int | None:
        return self.encoder.start_token_id()

    def describe(self) -> dict[str, str]:
        """What results record about where they were computed."""
        return {"device": str(self.device), "dtype": dtype_name(self.dtype)}

    # ----- text <-> tokens (encoding room) ---------------------------------------
    def encode_prompt(self, prompt: str, system_prompt: str | None = None) -> PromptEncoding:
        return self.encoder.encode_prompt(prompt, system_prompt)

    def encode_messages(self, messages: Sequence[Message]) -> PromptEncoding:
        return self.encoder.encode_messages(messages)

    def token_pieces(self, ids: list[int]) -> list[str]:
        return self.encoder.token_pieces(ids)

    def tokenize_text(self, text: str) -> tuple[list[int], list[Span]]:
        return self.encoder.tokenize_text(text)

    def decode_with_spans(self, ids: list[int]) -> tuple[str, list[Span]]:
        return self.encoder.decode_with_spans(ids)

    def decode(self, ids: list[int]) -> str:
        return self.encoder.decode(ids)

    # ----- generation room ----------------------------------------------------------
    def generate(
        self,
        prompt_ids: list[int],
        max_new_tokens: int = 64,
        on_token: Callable[[int], None] | None = None,
        keep_stop: bool = False,
    ) -> list[int]:
        """Greedy continuation; trailing end-of-sequence tokens are dropped unless
        `keep_stop` (the token that ended an early stop is part of what was said)."""
        return greedy(self, prompt_ids, None, max_new_tokens, on_token, keep_stop)

    def generate_from(
        self,
        context: MaskedContext,
        max_new_tokens: int = 64,
        on_token: Callable[[int], None] | None = None,
    ) -> list[int]:
        """Greedy continuation of a masked context; zeroed embeddings go in as embeddings."""
        return greedy(
            self, list(context.ids), list(context.zero_positions), max_new_tokens, on_token
        )

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

    def plan_backward(self, tokens_per_row: int, batch_size: int) -> tuple[int, bool]:
        """(rows per backward, recompute layers or not) under the memory budget."""
        return plan_backward(self.model, tokens_per_row, batch_size)

    def recomputing_layers(self, on: bool) -> Any:
        """A block in which decoder layers recompute their activations in backward."""
        return recompute_layers(self.model, on)

    def beating_between_layers(self, beat: Callable[[], None] | None) -> Any:
        """A block in which `beat()` runs before every decoder layer (cancel checks)."""
        return beat_between_layers(self.model, beat)

    # ----- variant scoring room -------------------------------------------------------
    def score_variants(
        self,
        variants: list[MaskedContext],
        target_ids: list[int],
        batch_size: int = 16,
        *,
        reference: MaskedContext | None = None,
        use_cache: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Teacher-forced log p(target | each variant): [n_variants, n_target] (see `scoring`)."""
        return self.scorer.score_variants(
            variants,
            target_ids,
            batch_size,
            reference=reference,
            use_cache=use_cache,
            progress=progress,
        )

    def target_log_distributions(
        self, context: MaskedContext, target_ids: list[int]
    ) -> torch.Tensor:
        """Next-token log-distributions at each target position: [n_target, vocab]."""
        return self.scorer.target_log_distributions(context, target_ids)
