"""Batched scoring of masked contexts, with the shared-prefix cache where it is exact.

Perturbation and joint methods score hundreds of variants of one context. Each
differs from a reference only from some position on, so the reference's prefix
runs once and its key/value cache is shared. That trick is exact only when a
model places tokens by the position ids we give it and keeps a plain per-layer
key/value cache; ALiBi-by-key-index models (MPT) are not, and state-space models
(Mamba) have no key/value cache at all. Rather than a list of architectures, one
probe per model compares cached, padded and one-at-a-time scores on a short text
and turns off what it cannot reproduce.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..errors import InvalidParameterError, PromptTooLongError
from ..record import Batching  # what the probe finds is what results record

if TYPE_CHECKING:
    from .core import ModelCore

DEFAULT_OPERATOR = "delete"
_PROBE_TEXT = "The quick brown fox jumps over the lazy dog near the quiet river bank."
_PROBE_TARGET = " Then it slept until noon."
# Largest probe disagreement accepted as rounding. Exact models differ between a
# batch and single rows by reordered sums: about 1e-6 in float32 and at most 1e-3 in
# bfloat16 on the probe; MPT's index-based ALiBi is off by 2e-2 in both, so the
# 16-bit bar sits between (a false "inexact" only costs speed; a false "exact" costs
# correctness).
_PROBE_TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 5e-3, torch.float16: 5e-3}


# Token positions one CPU batch may compute. The default model computes about 300
# positions a second on one contended core, so a batch (and the wait for a cancel,
# which is checked after each) stays near a second; fewer rows per forward cost a
# CPU almost nothing, since its matrix products are already wide at this size.
CPU_BATCH_TOKENS = 384


@dataclass
class MaskedContext:
    """A context (prompt + earlier output) after masking, ready to be scored or continued.

    `ids` are the token ids the model reads; `zero_positions` index into `ids` and
    name the positions whose input embeddings are zeroed (operator "zero" only).
    """

    ids: list[int]
    zero_positions: list[int] = field(default_factory=list)
    operator: str = DEFAULT_OPERATOR


@dataclass(frozen=True)
class ScoringPlan:
    """How `score_variants` will run: each variant's cached prefix length, the batches
    (variant indices, longest first), the reference prefix cached (0: none) and each
    variant's tokens to compute (its `work`)."""

    prefixes: list[int]
    batches: list[list[int]]
    cached: int
    work: list[int]

    @property
    def forward_calls(self) -> int:
        """One forward per batch, plus one for the shared prefix when there is one."""
        return len(self.batches) + (1 if self.cached > 0 else 0)

    @property
    def forward_sequences(self) -> int:
        return len(self.prefixes) + (1 if self.cached > 0 else 0)

    @property
    def token_rows(self) -> int:
        """Token positions computed, padding included: what the time goes into."""
        padded = sum(len(rows) * max(self.work[i] for i in rows) for rows in self.batches)
        return padded + self.cached


class VariantScorer:
    """Teacher-forced scores of many masked contexts, batched and prefix-shared."""

    def __init__(self, lm: ModelCore) -> None:
        self.lm = lm
        self._support: Batching | None = None

    @property
    def support(self) -> Batching:
        """The probe's verdict, computed on first use (two short forwards, not counted)."""
        if self._support is None:
            with self.lm.lock:
                saved = self.lm.cost.snapshot()
                try:
                    self._support = self._probe()
                finally:
                    self.lm.cost.restore(saved)
        return self._support

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
        """Teacher-forced log p(target token | variant context): [n_variants, n_target].

        Masking changes a context from some position on; everything before that is
        the same as in `reference` (default: the first variant; pass the unmasked
        context, or the current state of a search). So the reference's prefix runs
        once and its KV cache is shared: each variant computes only the tokens from
        its own first change on. Variants go `batch_size` at a time: each row reads
        its own part of the shared cache (the rest is hidden by the attention mask),
        its remaining tokens are left-padded, and its position ids continue its own
        count, so every row equals scoring that variant alone (float32, within
        1e-4). The cache is used only where the model's probe says it is exact, and
        padded batches only where padding is (`support`); `use_cache=False` turns
        the reuse off (same numbers, more work). Returns float32 on CPU.
        """
        if batch_size < 1:
            raise InvalidParameterError("batch_size must be at least 1.")
        n_target = len(target_ids)
        out = torch.zeros(len(variants), n_target)
        if not variants or n_target == 0:
            return out
        self._check(variants, n_target)
        with self.lm.lock, torch.no_grad():
            self._score_into(out, variants, target_ids, batch_size, reference, use_cache, progress)
        return out

    def _check(self, variants: list[MaskedContext], n_target: int) -> None:
        longest = max(len(v.ids) for v in variants) + n_target
        if longest > self.lm.max_context:
            raise PromptTooLongError(
                f"Context and target are {longest} tokens; this model reads at most "
                f"{self.lm.max_context}."
            )
        if min(len(v.ids) for v in variants) == 0:
            raise InvalidParameterError("A masked context is empty: nothing left to condition on.")

    def plan(
        self,
        variants: list[MaskedContext],
        target_ids: list[int],
        batch_size: int = 16,
        *,
        reference: MaskedContext | None = None,
        use_cache: bool = True,
    ) -> ScoringPlan:
        """The forwards `score_variants` will run for these arguments, without running them.

        Scoring and cost prediction both follow this one plan, so a predicted pass is
        a counted one. May run the one-time batching probe (uncounted).
        """
        n_target = len(target_ids)
        if not variants or n_target == 0:
            return ScoringPlan([], [], 0, [])
        support = self.support if len(variants) > 1 else None
        if support is not None and not support.padded_batches:
            batch_size = 1
        use_cache = use_cache and support is not None and support.prefix_cache
        reference = reference if reference is not None else variants[0]
        prefixes = [0] * len(variants)
        if use_cache and len(variants) > 1:
            ref_zeros = set(reference.zero_positions)
            prefixes = [
                _common_prefix(
                    v.ids,
                    set(v.zero_positions),
                    reference.ids,
                    ref_zeros,
                    min(len(v.ids) - 1, len(reference.ids)),
                )
                for v in variants
            ]
        work = [len(v.ids) + n_target - p for v, p in zip(variants, prefixes, strict=True)]
        cap = CPU_BATCH_TOKENS if self.lm.device.type == "cpu" else None
        batches = batches_by_length(work, batch_size, max_tokens=cap)
        return ScoringPlan(prefixes, batches, max(prefixes), work)

    def _score_into(
        self,
        out: torch.Tensor,
        variants: list[MaskedContext],
        target_ids: list[int],
        batch_size: int,
        reference: MaskedContext | None,
        use_cache: bool,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        reference = reference if reference is not None else variants[0]
        plan = self.plan(variants, target_ids, batch_size, reference=reference, use_cache=use_cache)
        prefixes = plan.prefixes
        shared = self._prefix_cache(reference, plan.cached) if plan.cached > 0 else None
        if shared is None:
            prefixes = [0] * len(variants)
        done = 0
        for rows in plan.batches:
            out[rows] = self._score_rows(
                [variants[i] for i in rows], [prefixes[i] for i in rows], target_ids, shared
            )
            done += len(rows)
            if progress:
                progress(done, len(variants))

    def target_log_distributions(
        self, context: MaskedContext, target_ids: list[int]
    ) -> torch.Tensor:
        """Next-token log-distributions at each target position: [n_target, vocab] (for KL).

        Row j is log p(. | context, target[:j]), teacher-forced. Float32 on CPU.
        """
        n = len(target_ids)
        if n == 0:
            return torch.zeros(0, self.lm.embedding_matrix.shape[0])
        ids = list(context.ids) + list(target_ids)
        with self.lm.lock, torch.no_grad():
            embeds = self.lm.context_embeds(ids, list(context.zero_positions))[None]
            logits = self.lm.forward_last(n + 1, inputs_embeds=embeds).logits
            return logits[0, :-1, :].float().log_softmax(-1).cpu()

    def _prefix_cache(
        self, reference: MaskedContext, length: int
    ) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Per-layer (keys, values) of the reference's first `length` tokens, or None when
        this model's cache is not a plain per-layer key/value store we can slice."""
        from transformers.cache_utils import DynamicLayer

        zeros = [p for p in reference.zero_positions if p < length]
        embeds = self.lm.context_embeds(reference.ids[:length], zeros)
        out = self.lm.forward_last(1, inputs_embeds=embeds[None], use_cache=True)
        layers = getattr(self.lm.cached_output(out), "layers", None)
        if not layers or any(type(layer) is not DynamicLayer for layer in layers):
            return None
        return [(layer.keys, layer.values) for layer in layers]

    def _score_rows(
        self,
        variants: list[MaskedContext],
        prefixes: list[int],
        target_ids: list[int],
        shared: list[tuple[torch.Tensor, torch.Tensor]] | None,
    ) -> torch.Tensor:
        """One batched forward: row b reuses `prefixes[b]` cached reference tokens."""
        from transformers import DynamicCache

        lm = self.lm
        n_target, rows = len(target_ids), len(variants)
        cached = max(prefixes)
        seqs = [list(v.ids) + list(target_ids) for v in variants]
        lengths = [len(s) - p for s, p in zip(seqs, prefixes, strict=True)]
        width = max(lengths)
        embeds = [
            lm.context_embeds(s, list(v.zero_positions))[p:]
            for s, v, p in zip(seqs, variants, prefixes, strict=True)
        ]
        hidden = embeds[0].shape[-1]
        batch = torch.zeros(rows, width, hidden, device=lm.device, dtype=embeds[0].dtype)
        mask = torch.zeros(rows, cached + width, dtype=torch.long, device=lm.device)
        positions = torch.zeros(rows, width, dtype=torch.long, device=lm.device)
        for b, (emb, p, n) in enumerate(zip(embeds, prefixes, lengths, strict=True)):
            batch[b, width - n :] = emb
            mask[b, :p] = 1
            mask[b, cached + width - n :] = 1
            positions[b, width - n :] = torch.arange(p, p + n, device=lm.device)
        kwargs: dict[str, Any] = {}
        if cached > 0 and shared is not None:
            data = [
                (
                    k[:, :, :cached].expand(rows, -1, -1, -1),
                    v[:, :, :cached].expand(rows, -1, -1, -1),
                )
                for k, v in shared
            ]
            kwargs = {
                lm.cache_argument: DynamicCache(data, config=lm.model.config),
                "use_cache": True,
            }
        logits = (
            lm.forward_last(
                n_target + 1,
                inputs_embeds=batch,
                attention_mask=mask,
                position_ids=positions,
                **kwargs,
            )
            .logits[:, :-1, :]
            .float()
        )
        targets = torch.tensor(target_ids, device=lm.device).expand(rows, -1)
        picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return (picked - logits.logsumexp(-1)).cpu()

    def _probe(self) -> Batching:
        """Score two variants of a short text alone, in one padded batch, and in one batch
        over a shared prefix; keep each shortcut only if it reproduces the scores alone.

        The two rows share different lengths of the reference's prefix, so the batch
        holds both a hidden gap (cached keys one row must not see) and left padding:
        exactly what a model that places keys by index, not by position id, gets wrong.
        """
        tokenizer = self.lm.tokenizer
        ids = list(tokenizer(_PROBE_TEXT, add_special_tokens=False)["input_ids"])
        target = list(tokenizer(_PROBE_TARGET, add_special_tokens=False)["input_ids"])
        start = self.lm.start_token_id()
        ids = ([start] if start is not None else []) + ids
        n = len(ids)
        late, early = n - 3, 3
        rows = [
            MaskedContext(ids[:late] + ids[late + 1 :]),
            MaskedContext(ids[:early] + ids[early + 2 :]),
        ]
        tolerance = _PROBE_TOLERANCE.get(self.lm.dtype, 5e-3)
        with torch.no_grad():
            alone = self._rows(rows, target, separately=True)
            padded = self._rows(rows, target)
            padding_error = _max_difference(padded, alone)
            if padding_error is None or padding_error > tolerance:
                reason = "padded batches differ from single rows"
                return Batching(False, False, _finite(padding_error), reason)
            try:
                shared = self._prefix_cache(MaskedContext(ids), late)
            except (TypeError, ValueError, RuntimeError, AttributeError):
                shared = None
            if shared is None:
                reason = "the model keeps no per-layer key/value cache to share"
                return Batching(True, False, padding_error, reason)
            cached = self._rows(rows, target, prefixes=[late, early], shared=shared)
        cache_error = _max_difference(cached, alone)
        if cache_error is None or cache_error > tolerance:
            reason = "the shared-prefix cache is not exact here"
            return Batching(True, False, _finite(cache_error), reason)
        return Batching(True, True, max(cache_error, padding_error))

    def _rows(
        self,
        rows: list[MaskedContext],
        target: list[int],
        *,
        separately: bool = False,
        prefixes: list[int] | None = None,
        shared: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor | None:
        """Probe scores of `rows` (one forward, or one each), or None when the model
        cannot run that way at all."""
        try:
            if separately:
                return torch.cat([self._score_rows([r], [0], target, None) for r in rows])
            return self._score_rows(rows, prefixes or [0] * len(rows), target, shared)
        except (TypeError, ValueError, RuntimeError, AttributeError, IndexError):
            return None


def _max_difference(a: torch.Tensor | None, b: torch.Tensor | None) -> float | None:
    if a is None or b is None or not torch.isfinite(a).all():
        return None
    return float((a - b).abs().max())


def _finite(error: float | None) -> float:
    return float("inf") if error is None else error


def batches_by_length(
    lengths: list[int], batch_size: int, slack: float = 0.75, max_tokens: int | None = None
) -> list[list[int]]:
    """Group row indices into batches of similar length, longest first.

    Rows are left-padded to the longest in their batch, and padding is computed
    like real tokens; so a batch closes when the next row is shorter than `slack`
    times its longest row (at most a quarter of any row's work is padding), or when
    the batch would compute more than `max_tokens` token positions (never below one
    row): progress, and so a cancel, comes once a batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and _fits(batches[-1], lengths, i, batch_size, slack, max_tokens):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _fits(
    batch: list[int],
    lengths: list[int],
    row: int,
    batch_size: int,
    slack: float,
    max_tokens: int | None,
) -> bool:
    """Whether `row` joins `batch` (whose first row is its longest) under every limit."""
    longest = lengths[batch[0]]
    return (
        len(batch) < batch_size
        and lengths[row] >= slack * longest
        and (max_tokens is None or (len(batch) + 1) * longest <= max_tokens)
    )


def _common_prefix(
    ids: list[int], zeros: set[int], ref_ids: list[int], ref_zeros: set[int], limit: int
) -> int:
    """How many leading tokens two contexts share (same id, same zeroing), at most `limit`."""
    n = 0
    while n < limit and ids[n] == ref_ids[n] and ((n in zeros) == (n in ref_zeros)):
        n += 1
    return n
