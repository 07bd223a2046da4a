"""One way to declare a SQLite table and bring a file written by an older version up to it.

Result folders and the server's history outlive the version that wrote them: a
rerun must resume an evaluation started before a column existed, and a history
from last month must still open. So every store declares its tables here, once,
as columns with their SQL definitions; opening a file creates what is missing
and adds to an older table the columns it lacks (SQLite's `ALTER TABLE ... ADD
COLUMN`, which keeps every row). Nothing else migrates a schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import PromptXrayError


class SchemaError(PromptXrayError):
    """A file whose table cannot be brought up to date (a key column is missing)."""


@dataclass(frozen=True)
class Table:
    """A table: (name, SQL definition) per column, in order, and its composite key.

    A column added after files were written must be one SQLite can add to an
    existing table: nullable, or NOT NULL with a DEFAULT, and not part of the key.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def create_sql(self) -> str:
        parts = [f"{name} {definition}" for name, definition in self.columns]
        if self.key:
            parts.append(f"PRIMARY KEY ({', '.join(self.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(parts)})"

    def _is_key(self, name: str, definition: str) -> bool:
        return name in self.key or "PRIMARY KEY" in definition.upper()


def ensure_schema(
    conn: sqlite3.Connection, tables: Iterable[Table], extra: Iterable[str] = ()
) -> None:
    """Create the missing tables, add to older ones the columns they lack (in declared
    order, so a new column lands last, as it would in a fresh file), then run `extra`
    statements (indexes: `CREATE INDEX IF NOT EXISTS ...`). The caller commits."""
    for table in tables:
        conn.execute(table.create_sql())
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table.name})")}
        for name, definition in table.columns:
            if name in have:
                continue
            if table._is_key(name, definition):
                raise SchemaError(
                    f"The table {table.name!r} has no key column {name!r}: the file was "
                    "written by an incompatible version; start a new one."
                )
            conn.execute(f"ALTER TABLE {table.name} ADD COLUMN {name} {definition}")
    for statement in extra:
        conn.execute(statement)
