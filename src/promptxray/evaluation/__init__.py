"""Faithfulness evaluation: metrics, the resumable dataset harness and results tables."""

from .config import EvalConfig
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
from .rows import read_prompts
from .runner import EvalReport, run_evaluation
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
