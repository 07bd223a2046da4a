"""Run history in one SQLite file under the data directory.

A *run* is one prompt and the model's output; it owns the explanations computed
on it and the mask-and-regenerate experiments made from those explanations. The
stored attribution JSON is the whole `Attribution`, so a reopened run re-renders
and re-aggregates exactly as it did, without the model.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..attribution import Attribution

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    system_prompt TEXT,
    max_new_tokens INTEGER NOT NULL,
    output TEXT NOT NULL,
    output_ids TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS explanations (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    created REAL NOT NULL,
    settings TEXT NOT NULL,
    attribution TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS edits (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    explanation_id TEXT NOT NULL REFERENCES explanations(id) ON DELETE CASCADE,
    created REAL NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS explanations_run ON explanations(run_id, created);
CREATE INDEX IF NOT EXISTS edits_run ON edits(run_id, created);
"""

DB_NAME = "history.sqlite3"


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


class HistoryStore:
    """Thread-safe access to the history database (one connection, one lock)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        with self._tx() as db:
            db.execute("PRAGMA foreign_keys = ON")
            db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ----- runs --------------------------------------------------------------------
    def add_run(
        self,
        *,
        model: str,
        prompt: str,
        system_prompt: str | None,
        max_new_tokens: int,
        output: str,
        output_ids: list[int],
    ) -> str:
        run_id = _new_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    time.time(),
                    model,
                    prompt,
                    system_prompt,
                    max_new_tokens,
                    output,
                    json.dumps(output_ids),
                ),
            )
        return run_id

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._tx() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        run = dict(row)
        run["output_ids"] = json.loads(run["output_ids"])
        return run

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, with the settings of each run's latest explanation (if any)."""
        with self._tx() as db:
            rows = db.execute(
                """
                SELECT r.id, r.created, r.model, r.prompt, r.output,
                       (SELECT COUNT(*) FROM explanations e
                        WHERE e.run_id = r.id) AS n_explanations,
                       (SELECT e.settings FROM explanations e WHERE e.run_id = r.id
                        ORDER BY e.created DESC, e.rowid DESC LIMIT 1) AS last_settings
                FROM runs r ORDER BY r.created DESC, r.rowid DESC LIMIT ?
                """,
                (limit,),
            ).fetchall()
        out = []
        for row in rows:
            item = dict(row)
            settings = item.pop("last_settings")
            item["last_method"] = json.loads(settings)["method"] if settings else None
            out.append(item)
        return out

    def delete_run(self, run_id: str) -> bool:
        with self._tx() as db:
            db.execute("DELETE FROM edits WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM explanations WHERE run_id = ?", (run_id,))
            return db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    # ----- explanations ------------------------------------------------------------
    def add_explanation(
        self, run_id: str, settings: dict[str, Any], attribution: Attribution
    ) -> str:
        explanation_id = _new_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO explanations VALUES (?, ?, ?, ?, ?)",
                (
                    explanation_id,
                    run_id,
                    time.time(),
                    json.dumps(settings),
                    attribution.to_json(),
                ),
            )
        return explanation_id

    def get_explanation(self, explanation_id: str) -> dict[str, Any] | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM explanations WHERE id = ?", (explanation_id,)
            ).fetchone()
        if row is None:
            return None
        item = dict(row)
        item["settings"] = json.loads(item["settings"])
        item["attribution"] = Attribution.from_json(item["attribution"])
        return item

    def list_explanations(self, run_id: str) -> list[dict[str, Any]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, created, settings FROM explanations "
                "WHERE run_id = ? ORDER BY created, rowid",
                (run_id,),
            ).fetchall()
        return [{**dict(r), "settings": json.loads(r["settings"])} for r in rows]

    # ----- mask-and-regenerate results ----------------------------------------------
    def add_edit(self, run_id: str, explanation_id: str, result: dict[str, Any]) -> str:
        edit_id = _new_id()
        with self._tx() as db:
            db.execute(
                "INSERT INTO edits VALUES (?, ?, ?, ?, ?)",
                (edit_id, run_id, explanation_id, time.time(), json.dumps(result)),
            )
        return edit_id

    def list_edits(self, run_id: str) -> list[dict[str, Any]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, explanation_id, created, result FROM edits "
                "WHERE run_id = ? ORDER BY created, rowid",
                (run_id,),
            ).fetchall()
        return [{**dict(r), "result": json.loads(r["result"])} for r in rows]
