"""Run history in one SQLite file under the data directory.

A *run* is one prompt and the model's output; it owns the explanations computed
on it and the mask-and-regenerate experiments made from those explanations. The
stored attribution JSON is the whole `Attribution`, so a reopened run re-renders
and re-aggregates exactly as it did, without the model.

Nothing is lost when the history cannot be written (disk full, read-only folder):
the record stays in memory for this session (it can still be explained, masked
and compared) and the write raises `HistoryWriteError`, which the job turns into
a warning next to its result.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..attribution import Attribution
from ..errors import InvalidParameterError
from ..record import FaithfulnessCheck, RunRecord
from ..sqlite_schema import Table, ensure_schema

# The history's tables. Columns added to `runs` after the first release (`messages`,
# `output_source`) come last: a history written before them gains them on open, and
# its older runs read as single-turn and generated.
_TABLES = (
    Table(
        "runs",
        (
            ("id", "TEXT PRIMARY KEY"),
            ("created", "REAL NOT NULL"),
            ("model", "TEXT NOT NULL"),
            ("prompt", "TEXT NOT NULL"),
            ("system_prompt", "TEXT"),
            ("max_new_tokens", "INTEGER NOT NULL"),
            ("output", "TEXT NOT NULL"),
            ("output_ids", "TEXT NOT NULL"),
            ("messages", "TEXT"),
            ("output_source", "TEXT NOT NULL DEFAULT 'generated'"),
        ),
    ),
    Table(
        "explanations",
        (
            ("id", "TEXT PRIMARY KEY"),
            ("run_id", "TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE"),
            ("created", "REAL NOT NULL"),
            ("settings", "TEXT NOT NULL"),
            ("attribution", "TEXT NOT NULL"),
        ),
    ),
    Table(
        "edits",
        (
            ("id", "TEXT PRIMARY KEY"),
            ("run_id", "TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE"),
            (
                "explanation_id",
                "TEXT NOT NULL REFERENCES explanations(id) ON DELETE CASCADE",
            ),
            ("created", "REAL NOT NULL"),
            ("result", "TEXT NOT NULL"),
        ),
    ),
    # Faithfulness checks computed after the explanation (at another granularity, or of one
    # heatmap row): a cache, so a regrouped view shows its check without the model again.
    # `token` -1 is the whole target; `k` 0 the default k.
    Table(
        "checks",
        (
            ("explanation_id", "TEXT NOT NULL REFERENCES explanations(id) ON DELETE CASCADE"),
            ("granularity", "TEXT NOT NULL"),
            ("token", "INTEGER NOT NULL"),
            ("k", "INTEGER NOT NULL"),
            ("created", "REAL NOT NULL"),
            ("result", "TEXT NOT NULL"),
        ),
        key=("explanation_id", "granularity", "token", "k"),
    ),
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS explanations_run ON explanations(run_id, created)",
    "CREATE INDEX IF NOT EXISTS edits_run ON edits(run_id, created)",
)

DB_NAME = "history.sqlite3"


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


class HistoryWriteError(Exception):
    """A record could not be written to the history; it is kept in memory instead."""

    def __init__(self, record_id: str, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.record_id = record_id
        self.cause = cause

    def warning(self, what: str) -> str:
        """The one-line notice the page shows next to the result that was not saved."""
        return (
            f"Not saved to the history ({self.cause}): this {what} is kept only until "
            "the server stops. Free some disk space or start the server with another "
            "--data-dir to keep new results."
        )


def check_data_dir(path: Path | str) -> Path:
    """Make sure the history can be kept in `path`; a readable error otherwise.

    Called before the model loads, so a wrong data_dir fails in a second, not
    after the load. Creates the folder and writes (then removes) a probe file.
    """
    folder = Path(path).expanduser()
    probe = folder / f".promptxray-write-check-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
        db = folder / DB_NAME
        if db.exists():
            with open(db, "r+b"):
                pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidParameterError(
            f"Cannot keep the history in {folder} ({reason}); pick a writable data_dir.",
            param="data_dir",
        ) from exc
    return folder


class HistoryStore:
    """Thread-safe access to the history database (one connection, one lock)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        # Records whose write failed, by table then id: still usable this session.
        self._unsaved: dict[str, dict[str, dict[str, Any]]] = {
            "runs": {},
            "explanations": {},
            "edits": {},
        }
        with self._tx() as db:
            db.execute("PRAGMA foreign_keys = ON")
            ensure_schema(db, _TABLES, _INDEXES)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def _write(self, sql: str, values: tuple[Any, ...]) -> None:
        """One committed write (the one place a full or read-only disk shows up)."""
        with self._tx() as db:
            db.execute(sql, values)

    def _insert(self, table: str, record: dict[str, Any]) -> str:
        """Write `record` (columns in table order); keep it in memory if that fails."""
        marks = ", ".join("?" * len(record))
        try:
            self._write(f"INSERT INTO {table} VALUES ({marks})", tuple(record.values()))
        except (sqlite3.Error, OSError) as exc:
            with self._lock:
                self._unsaved[table][record["id"]] = record
            raise HistoryWriteError(record["id"], exc) from exc
        return str(record["id"])

    def _select_one(self, table: str, record_id: str) -> dict[str, Any] | None:
        with self._tx() as db:
            row = db.execute(f"SELECT * FROM {table} WHERE id = ?", (record_id,)).fetchone()
        if row is not None:
            return dict(row)
        with self._lock:
            kept = self._unsaved[table].get(record_id)
        return dict(kept) if kept is not None else None

    def _unsaved_of(self, table: str, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._unsaved[table].values() if r["run_id"] == run_id]

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
        messages: list[dict[str, str]] | None = None,
        output_source: str = "generated",
    ) -> str:
        """Save a run; its id, or `HistoryWriteError` (run kept in memory) if it cannot be.

        `messages` is a conversation's turns before the output (None: single-turn, as
        `prompt` and `system_prompt` say it all); `output_source` "given" marks a
        response supplied by the user, which explanations must not pass off as generated.
        """
        record = {
            "id": _new_id(),
            "created": time.time(),
            "model": model,
            "prompt": prompt,
            "system_prompt": system_prompt,
            "max_new_tokens": max_new_tokens,
            "output": output,
            "output_ids": json.dumps(output_ids),
            "messages": json.dumps(messages) if messages is not None else None,
            "output_source": output_source,
        }
        return self._insert("runs", record)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        run = self._select_one("runs", run_id)
        if run is None:
            return None
        run["output_ids"] = json.loads(run["output_ids"])
        run["messages"] = json.loads(run["messages"]) if run.get("messages") else None
        run["output_source"] = run.get("output_source") or "generated"
        return run

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, with the settings of each run's latest explanation (if any).

        Runs and explanations kept in memory after a failed write are listed too,
        marked `saved: False`, so the page can say they will not survive a restart.
        """
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
        items = [{**dict(row), "saved": True} for row in rows]
        with self._lock:
            kept_runs = list(self._unsaved["runs"].values())
            kept_explanations = list(self._unsaved["explanations"].values())
        for run in kept_runs:
            fields = ("id", "created", "model", "prompt", "output")
            items.append({**{k: run[k] for k in fields}, "n_explanations": 0, "saved": False})
            items[-1]["last_settings"] = None
        by_id = {item["id"]: item for item in items}
        for explanation in sorted(kept_explanations, key=lambda e: e["created"]):
            item = by_id.get(explanation["run_id"])
            if item is not None:
                item["n_explanations"] += 1
                item["last_settings"] = explanation["settings"]
                item["saved"] = False
        items.sort(key=lambda item: -item["created"])
        out = []
        for item in items[:limit]:
            settings = item.pop("last_settings")
            item["last_method"] = json.loads(settings)["method"] if settings else None
            out.append(item)
        return out

    def delete_run(self, run_id: str) -> bool:
        """Remove a run with its explanations and edits (saved or kept in memory)."""
        with self._lock:
            kept = self._unsaved["runs"].pop(run_id, None) is not None
            for table in ("explanations", "edits"):
                for key in [k for k, r in self._unsaved[table].items() if r["run_id"] == run_id]:
                    del self._unsaved[table][key]
        with self._tx() as db:
            db.execute("DELETE FROM edits WHERE run_id = ?", (run_id,))
            db.execute(
                "DELETE FROM checks WHERE explanation_id IN "
                "(SELECT id FROM explanations WHERE run_id = ?)",
                (run_id,),
            )
            db.execute("DELETE FROM explanations WHERE run_id = ?", (run_id,))
            return db.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0 or kept

    def list_explanation_choices(self, limit: int = 300) -> list[dict[str, Any]]:
        """Every explanation with its run's prompt, newest first: what Compare offers."""
        with self._tx() as db:
            rows = db.execute(
                """
                SELECT e.id, e.run_id, e.created, e.settings, r.prompt
                FROM explanations e JOIN runs r ON r.id = e.run_id
                ORDER BY e.created DESC, e.rowid DESC LIMIT ?
                """,
                (limit,),
            ).fetchall()
        items = [dict(r) for r in rows]
        with self._lock:
            kept = list(self._unsaved["explanations"].values())
        for explanation in kept:
            run = self.get_run(explanation["run_id"])
            if run is not None:
                fields = ("id", "run_id", "created", "settings")
                items.append({**{k: explanation[k] for k in fields}, "prompt": run["prompt"]})
        items.sort(key=lambda item: -item["created"])
        return [{**item, "settings": json.loads(item["settings"])} for item in items[:limit]]

    # ----- explanations ------------------------------------------------------------
    def add_explanation(
        self, run_id: str, settings: dict[str, Any], attribution: Attribution
    ) -> str:
        """Save an explanation; its id, or `HistoryWriteError` (kept in memory)."""
        record = {
            "id": _new_id(),
            "run_id": run_id,
            "created": time.time(),
            "settings": json.dumps(settings),
            "attribution": attribution.to_json(),
        }
        return self._insert("explanations", record)

    def get_explanation(self, explanation_id: str) -> dict[str, Any] | None:
        item = self._select_one("explanations", explanation_id)
        if item is None:
            return None
        item["settings"] = json.loads(item["settings"])
        item["attribution"] = Attribution.from_json(item["attribution"])
        return item

    def list_explanations(self, run_id: str) -> list[dict[str, Any]]:
        """A run's explanations, oldest first (settings only, no attribution)."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, created, settings FROM explanations "
                "WHERE run_id = ? ORDER BY created, rowid",
                (run_id,),
            ).fetchall()
        items = [dict(r) for r in rows]
        items += [
            {k: r[k] for k in ("id", "created", "settings")}
            for r in self._unsaved_of("explanations", run_id)
        ]
        items.sort(key=lambda r: r["created"])
        return [{**r, "settings": json.loads(r["settings"])} for r in items]

    # ----- mask-and-regenerate results ----------------------------------------------
    def add_edit(self, run_id: str, explanation_id: str, result: dict[str, Any]) -> str:
        """Save a mask-and-regenerate result; its id, or `HistoryWriteError` (kept in memory)."""
        record = {
            "id": _new_id(),
            "run_id": run_id,
            "explanation_id": explanation_id,
            "created": time.time(),
            "result": json.dumps(result),
        }
        return self._insert("edits", record)

    def list_edits(self, run_id: str) -> list[dict[str, Any]]:
        """A run's mask-and-regenerate results, oldest first."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, explanation_id, created, result FROM edits "
                "WHERE run_id = ? ORDER BY created, rowid",
                (run_id,),
            ).fetchall()
        items = [dict(r) for r in rows]
        items += [
            {k: r[k] for k in ("id", "explanation_id", "created", "result")}
            for r in self._unsaved_of("edits", run_id)
        ]
        items.sort(key=lambda r: r["created"])
        return [{**r, "result": json.loads(r["result"])} for r in items]

    # ----- faithfulness checks computed later (a cache) --------------------------------
    def add_check(
        self,
        explanation_id: str,
        granularity: str,
        token: int | None,
        k: int | None,
        check: FaithfulnessCheck,
    ) -> bool:
        """Keep a check computed for an explanation at `granularity` (of output token
        `token`, or of the target when None; with `k`, or the default k when None).

        A cache only: False when it cannot be written (a full disk, an explanation kept
        in memory only), and the check is then computed again when asked again.
        """
        values = (
            explanation_id,
            granularity,
            -1 if token is None else token,
            0 if k is None else k,
            time.time(),
            json.dumps(asdict(check)),
        )
        try:
            self._write("INSERT OR REPLACE INTO checks VALUES (?, ?, ?, ?, ?, ?)", values)
        except (sqlite3.Error, OSError):
            return False
        return True

    def get_check(
        self, explanation_id: str, granularity: str, token: int | None, k: int | None
    ) -> FaithfulnessCheck | None:
        """A check `add_check` kept, or None."""
        key = (explanation_id, granularity, -1 if token is None else token, 0 if k is None else k)
        with self._tx() as db:
            row = db.execute(
                "SELECT result FROM checks WHERE explanation_id = ? AND granularity = ? "
                "AND token = ? AND k = ?",
                key,
            ).fetchone()
        if row is None:
            return None
        return RunRecord.from_dict({"check": json.loads(row["result"])}).check
