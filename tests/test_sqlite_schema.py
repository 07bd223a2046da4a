"""The one schema helper: a fresh file gets the declared tables, an older one what it lacks."""

from __future__ import annotations

import sqlite3

import pytest

from promptxray.sqlite_schema import SchemaError, Table, ensure_schema

NOTES = Table(
    "notes",
    (
        ("id", "TEXT"),
        ("version", "INTEGER"),
        ("text", "TEXT NOT NULL"),
        ("source", "TEXT NOT NULL DEFAULT 'typed'"),  # added after the first release
        ("tags", "TEXT"),  # added after the first release
    ),
    key=("id", "version"),
)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_a_fresh_file_gets_the_declared_table_key_and_index(tmp_path):
    conn = sqlite3.connect(tmp_path / "n.sqlite")
    index = "CREATE INDEX IF NOT EXISTS notes_text ON notes(text)"
    ensure_schema(conn, [NOTES], [index])
    assert _columns(conn, "notes") == NOTES.column_names
    conn.execute("INSERT INTO notes (id, version, text) VALUES ('a', 1, 'x')")
    with pytest.raises(sqlite3.IntegrityError):  # (id, version) is the key
        conn.execute("INSERT INTO notes (id, version, text) VALUES ('a', 1, 'y')")
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "notes_text" in names
    ensure_schema(conn, [NOTES], [index])  # opening again changes nothing
    assert _columns(conn, "notes") == NOTES.column_names


def test_an_older_file_gains_the_missing_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "n.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(
            "CREATE TABLE notes (id TEXT, version INTEGER, text TEXT NOT NULL,"
            " PRIMARY KEY (id, version));"
            "INSERT INTO notes VALUES ('a', 1, 'kept');"
        )
    conn = sqlite3.connect(path)
    ensure_schema(conn, [NOTES])
    assert _columns(conn, "notes") == NOTES.column_names  # added last, in declared order
    assert conn.execute("SELECT * FROM notes").fetchall() == [("a", 1, "kept", "typed", None)]


def test_a_missing_key_column_cannot_be_added(tmp_path):
    conn = sqlite3.connect(tmp_path / "n.sqlite")
    conn.execute("CREATE TABLE notes (id TEXT PRIMARY KEY, text TEXT NOT NULL)")
    with pytest.raises(SchemaError, match="no key column 'version'"):
        ensure_schema(conn, [NOTES])


def test_every_store_declares_its_tables_through_the_helper(tmp_path):
    """The evaluation, study and server stores open a fresh file with their declared columns."""
    from promptxray.evaluation.store import OUTPUTS, ROWS, ResultStore
    from promptxray.server.store import HistoryStore
    from promptxray.study.runner import STUDY_ROWS, StudyStore

    for store_type, tables in ((ResultStore, (OUTPUTS, ROWS)), (StudyStore, (STUDY_ROWS,))):
        store = store_type(tmp_path / f"{store_type.__name__}.sqlite")
        try:
            for table in tables:
                assert _columns(store.conn, table.name) == table.column_names
        finally:
            store.close()
    history = HistoryStore(tmp_path / "history")
    try:
        conn = sqlite3.connect(history.path)
        assert _columns(conn, "runs")[-2:] == ["messages", "output_source"]
        assert {"runs", "explanations", "edits"} <= {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        conn.close()
    finally:
        history.close()
