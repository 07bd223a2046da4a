"""What every batch job over a JSONL file shares: reading, progress, the store, Ray.

`promptxray evaluate` and `promptxray study` both read one JSON object per line,
report a bad line by its number and go on (one broken row must not cost a long
run), show progress with an ETA, commit every finished row to SQLite at once,
and, with `ray`, send their work to Ray workers by one road (`run_batch_on_ray`).
They share this module rather than copies.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import InvalidParameterError
from .sqlite_schema import Table, ensure_schema

if TYPE_CHECKING:
    from .distributed import RayOptions, RayStats


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str


class RowError(ValueError):
    """What is wrong with one line of a batch file (reported with its line number)."""


def read_jsonl(path: str | Path) -> tuple[list[tuple[int, dict[str, Any]]], list[BadLine]]:
    """(line number, object) for every JSON-object line; the other non-blank lines as BadLine."""
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"Data file not found: {path}")
    good: list[tuple[int, dict[str, Any]]] = []
    bad: list[BadLine] = []
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                bad.append(BadLine(number, f"not valid JSON ({exc.msg})"))
                continue
            if not isinstance(obj, dict):
                bad.append(BadLine(number, "not a JSON object"))
                continue
            good.append((number, obj))
    return good, bad


def row_key(obj: dict[str, Any], line: int, seen: set[str]) -> str:
    """The row's `id`, or `line<N>`; a repeated id gets `@line<N>` so keys stay unique."""
    key = str(obj["id"]) if obj.get("id") not in (None, "") else f"line{line}"
    if key in seen:
        key = f"{key}@line{line}"
    seen.add(key)
    return key


T = TypeVar("T")


def usable_rows(
    data: str | Path,
    read: Callable[[str | Path], tuple[list[T], list[BadLine]]],
    limit: int | None,
    console: Any,
    what: str,
) -> tuple[list[T], list[BadLine]]:
    """Read a batch file, say which lines were skipped and why, keep the first `limit`
    rows, and refuse a file with nothing usable (one error, before any model loads)."""
    rows, bad = read(data)
    for b in bad:
        console.print(f"[yellow]{data}: line {b.line} skipped: {b.reason}[/]", soft_wrap=True)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise InvalidParameterError(f"No usable {what} in {data}.")
    return rows, bad


@contextmanager
def progress_bar(
    console: Any, show: bool, total: int, label: str
) -> Iterator[Callable[[int, str], None]]:
    """A rich progress bar with elapsed time and ETA; yields advance(n, description)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=not show,
    )
    with progress:
        task = progress.add_task("", total=total)

        def advance(n: int, description: str) -> None:
            progress.update(task, advance=n, description=description)

        yield advance


class SqliteStore:
    """A run's SQLite file where every write is committed at once.

    A long batch job is stopped, killed or out of power at some point; committing
    each finished row means a rerun skips it and nothing done is lost. Subclasses
    declare their `tables` (a file written by an older version gains the columns it
    lacks when it opens, so it still resumes).
    """

    tables: tuple[Table, ...] = ()

    def __init__(self, path: str | Path) -> None:
        import sqlite3

        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(self.path))
            self.conn.row_factory = sqlite3.Row
            ensure_schema(self.conn, self.tables)
            self.conn.commit()
        except (OSError, sqlite3.Error) as exc:
            # Opened before any model loads, so a folder that cannot be written fails here
            # in a second, as one line.
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InvalidParameterError(
                f"Cannot keep results in {self.path.parent}: {reason}."
            ) from exc

    def close(self) -> None:
        self.conn.close()

    def insert(self, table: str, values: dict[str, Any]) -> None:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.conn.execute(
            f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})", list(values.values())
        )
        self.conn.commit()

    def get(self, table: str, key: dict[str, Any]) -> Any:
        where = " AND ".join(f"{c}=?" for c in key)
        return self.conn.execute(
            f"SELECT * FROM {table} WHERE {where}", list(key.values())
        ).fetchone()


# ----- Ray ------------------------------------------------------------------------------
def worker_loader(model: Any) -> Callable[[], Any]:
    """What each Ray worker calls to load its model: a name's loader, or the loader given.

    A model already loaded here is refused: every worker loads its own copy, and
    shipping a loaded one to each would copy its weights through Ray's object store.
    """
    from .api import load_model

    if model is None or isinstance(model, str):
        return functools.partial(load_model, model)
    if callable(model) and not hasattr(model, "tokenizer"):
        return model
    raise InvalidParameterError(
        "On Ray, give a model name or a function that loads the model, not a loaded model: "
        "each worker loads its own.",
        param="model",
    )


def run_batch_on_ray(
    jobs: list[Any] | Callable[[str], list[Any]],
    fn: Callable[[Any, Any], Any],
    model: Any,
    options: RayOptions,
    on_result: Callable[[Any], None],
    on_failure: Callable[[Any, str], None],
    job_key: Callable[[Any], str],
    console: Any,
    label: str = "",
) -> RayStats:
    """The one road of a batch job (an evaluation's prompts, a study's rows of one model)
    to Ray: the workers load `model` (a name or a loader, see `worker_loader`), run
    `fn(model, job)` for every job (`run_on_ray`), and the run's statistics end in one
    line on `console`, after `label`."""
    from . import distributed

    stats = distributed.run_on_ray(
        jobs, fn, worker_loader(model), options, on_result, on_failure, job_key=job_key
    )
    console.print(f"{label}{stats.summary()}", soft_wrap=True)
    return stats
