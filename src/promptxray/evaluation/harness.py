"""The harness's former import path, kept for callers that still import from it.

The harness is now one module per job: `rows` (the input file), `config` (the
settings), `store` (the SQLite file), `work` (one prompt) and `runner` (the run).
New code imports from those or from `promptxray.evaluation`.
"""

from .config import EvalConfig
from .rows import PromptRecord, read_prompts
from .runner import EvalReport, run_evaluation
from .store import DB_NAME, ResultStore

__all__ = [
    "DB_NAME",
    "EvalConfig",
    "EvalReport",
    "PromptRecord",
    "ResultStore",
    "read_prompts",
    "run_evaluation",
]
