"""Faithfulness evaluation: metrics, the resumable dataset harness and results tables."""

from .harness import EvalConfig, EvalReport, read_prompts, run_evaluation
from .metrics import (
    Faithfulness,
    FaithfulnessScorer,
    aopc,
    bleu,
    kl_divergence,
    probability_ratio,
    rouge_l,
    sbert_cosine,
)
from .table import ResultsTable, build_table

__all__ = [
    "EvalConfig",
    "EvalReport",
    "Faithfulness",
    "FaithfulnessScorer",
    "ResultsTable",
    "aopc",
    "bleu",
    "build_table",
    "kl_divergence",
    "probability_ratio",
    "read_prompts",
    "rouge_l",
    "run_evaluation",
    "sbert_cosine",
]
