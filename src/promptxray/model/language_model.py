"""`LanguageModel`: the thin façade every method, view and job talks to.

The core it extends (`core.ModelCore`) holds the transformers model and tokenizer, the
cost counter and the lock, and the few operations every room shares (embeddings, one
counted forward, teacher-forced log-probs). Encoding, generation and variant scoring live
in their own rooms (`encoding`, `generation`, `scoring`); this class only hands calls on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..record import Batching
from ..roles import Message, Span
from .core import ModelCore
from .devices import Placement, dtype_name
from .encoding import PromptEncoding
from .generation import greedy
from .heartbeat import beat_between_layers
from .memory import plan_backward, recompute_layers
from .scoring import MaskedContext, VariantScorer


class LanguageModel(ModelCore):
    """The façade every method, view and job talks to: the core, plus the rooms."""

    def __init__(
        self, model: Any, tokenizer: Any, name: str = "model", placement: Placement | None = None
    ) -> None:
        super().__init__(model, tokenizer, name)
        self.scorer = VariantScorer(self)
        self._placement = placement

    # ----- facts about the model -------------------------------------------------
    @property
    def placement_note(self) -> str:
        """Where the model runs, for the user ("cpu float32 (device and dtype picked by auto)")."""
        if self._placement is not None:
            return self._placement.describe()
        return f"{self.device} {dtype_name(self.dtype)}"

    @property
    def has_chat_template(self) -> bool:
        return self.encoder.has_chat_template

    @property
    def batching_support(self) -> Batching:
        """Whether padded batches and the shared-prefix cache are exact for this model."""
        return self.scorer.support

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

    # ----- memory and layer hooks ---------------------------------------------------
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
