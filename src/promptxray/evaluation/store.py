"""The SQLite file of an evaluation's run folder: one committed row per (prompt, method, settings).

Every finished output and row is committed the moment it exists, so a stopped run
loses nothing and a rerun with the same settings skips what is stored. A row's key
holds the prompt (its id and content hash), the method, the model and every
setting that changes the numbers, so changing one never reuses a wrong row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from ..batch import SqliteStore
from ..sqlite_schema import Table
from .check_columns import CHECK_COLUMNS
from .config import EvalConfig
from .metrics import METRIC_NAMES
from .rows import PromptRecord

DB_NAME = "results.sqlite"

ROW_KEY = (
    "prompt_key",
    "prompt_sha",
    "method",
    "k",
    "granularity",
    "masking",
    "model",
    "max_new_tokens",
    "params",
)

# `messages` and `output_source` came after the first result folders were written: an
# older file gains them on open, so it still resumes (its rows were all generated,
# single-turn prompts). So do the faithfulness check's columns (`check_columns`): an
# older row keeps them empty, and is reused as it is.
OUTPUTS = Table(
    "outputs",
    (
        ("prompt_key", "TEXT"),
        ("prompt_sha", "TEXT"),
        ("model", "TEXT"),
        ("max_new_tokens", "INTEGER"),
        ("line", "INTEGER"),
        ("prompt", "TEXT"),
        ("output", "TEXT"),
        ("output_ids", "TEXT"),
        ("error", "TEXT"),
        ("seconds", "REAL"),
        ("messages", "TEXT"),
        ("output_source", "TEXT"),
    ),
    key=("prompt_key", "prompt_sha", "model", "max_new_tokens"),
)
ROWS = Table(
    "rows",
    (
        ("prompt_key", "TEXT"),
        ("prompt_sha", "TEXT"),
        ("method", "TEXT"),
        ("k", "INTEGER"),
        ("granularity", "TEXT"),
        ("masking", "TEXT"),
        ("model", "TEXT"),
        ("max_new_tokens", "INTEGER"),
        ("params", "TEXT"),
        ("line", "INTEGER"),
        ("error", "TEXT"),
        ("operator", "TEXT"),
        ("n_units", "INTEGER"),
        *((metric, "REAL") for metric in METRIC_NAMES),
        ("seconds", "REAL"),
        ("forward_passes", "REAL"),
        ("backward_passes", "REAL"),
        ("eval_seconds", "REAL"),
        ("masked_output", "TEXT"),
        ("masked_units", "TEXT"),
        ("details", "TEXT"),
        ("output_source", "TEXT"),
        *CHECK_COLUMNS,
    ),
    key=ROW_KEY,
)


class ResultStore(SqliteStore):
    """The SQLite file of a run directory; every write is committed at once."""

    tables = (OUTPUTS, ROWS)

    def get_output(self, rec: PromptRecord, model: str, max_new_tokens: int) -> sqlite3.Row | None:
        key = {"prompt_key": rec.key, "prompt_sha": rec.sha, "model": model}
        return self.get("outputs", {**key, "max_new_tokens": max_new_tokens})

    def put_output(self, rec: PromptRecord, model: str, max_new_tokens: int, **fields: Any) -> None:
        messages = rec.recorded_messages
        values = {
            "prompt_key": rec.key,
            "prompt_sha": rec.sha,
            "model": model,
            "max_new_tokens": max_new_tokens,
            "line": rec.line,
            "prompt": rec.prompt,
            "messages": None if messages is None else json.dumps(messages, ensure_ascii=False),
            **fields,
        }
        self.insert("outputs", values)

    def row_key(self, rec: PromptRecord, method: str, model: str, cfg: EvalConfig) -> tuple:
        return (
            rec.key,
            rec.sha,
            method,
            cfg.k,
            cfg.granularity,
            cfg.masking,
            model,
            cfg.max_new_tokens,
            cfg.params_key(method),
        )

    def has_row(self, key: tuple) -> bool:
        return self.get("rows", dict(zip(ROW_KEY, key, strict=True))) is not None

    def put_row(self, key: tuple, **fields: Any) -> None:
        self.insert("rows", {**dict(zip(ROW_KEY, key, strict=True)), **fields})

    def rows_for(self, keys: Sequence[tuple]) -> list[dict[str, Any]]:
        """The stored rows of these keys, in their order (missing ones left out)."""
        found = (self.get("rows", dict(zip(ROW_KEY, key, strict=True))) for key in keys)
        return [dict(row) for row in found if row is not None]
