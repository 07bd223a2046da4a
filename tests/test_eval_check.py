"""The faithfulness check in `evaluate`: stored per row, read from older files, in the table."""

from __future__ import annotations

import json
import sqlite3

import pytest

from promptxray import attribute, build_problem
from promptxray.evaluation import EvalConfig, run_evaluation
from promptxray.evaluation.check_columns import CHECK_COLUMNS
from promptxray.evaluation.store import DB_NAME, ResultStore
from promptxray.evaluation.table import COLUMNS, build_table
from promptxray.intervals import mean_interval

PROMPTS = {
    "sea": "Write a short poem about the sea and the wind.",
    "fruit": "List three fruits that are red.",
    "hi": "Hello there",  # two words: k = 2 leaves none, so no check
}
CHECK_NAMES = [name for name, _ in CHECK_COLUMNS]


def _data(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [json.dumps({"id": key, "prompt": p}) for key, p in PROMPTS.items()]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _config(**overrides) -> EvalConfig:
    base = dict(
        methods=["grad_norm", "leave_one_out"],
        k=2,
        granularity="word",
        max_new_tokens=5,
        use_sbert=False,
    )
    return EvalConfig(**{**base, **overrides})


def _rows(path) -> dict[tuple[str, str], dict]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return {(r["prompt_key"], r["method"]): dict(r) for r in conn.execute("SELECT * FROM rows")}


def test_a_stored_row_carries_the_check_of_attribute_at_the_evaluations_k(tiny_lm, tmp_path):
    cfg = _config()
    run_evaluation(_data(tmp_path), tmp_path, cfg, lm=tiny_lm, show_progress=False)
    rows = _rows(tmp_path / DB_NAME)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        outputs = dict(conn.execute("SELECT prompt_key, output_ids FROM outputs").fetchall())
    for key in ("sea", "fruit"):
        problem = build_problem(tiny_lm, PROMPTS[key], output_ids=json.loads(outputs[key]))
        for method in cfg.methods:
            row = rows[(key, method)]
            params = cfg.request(method).params
            check = attribute(tiny_lm, problem, method, "word", params=params, check_k=2)
            check = check.record.check
            assert check is not None and check.reason is None
            assert row["check_k"] == check.k == 2
            assert row["check_verdict"] == check.verdict
            assert row["check_faithful"] == int(check.faithful)
            assert row["check_deletion_ratio"] == pytest.approx(check.deletion_ratio, rel=1e-9)
            assert row["check_beats_random"] == check.beats_random
            assert row["check_random_sets"] == len(check.random_ratios) == 8
            assert row["check_sufficiency_ratio"] == pytest.approx(check.sufficiency_ratio)
            assert row["check_lds"] == (None if check.lds is None else pytest.approx(check.lds))
            assert row["check_lds_ablations"] == check.lds_ablations
            assert json.loads(row["check_curve"]) == pytest.approx(check.curve)
            assert json.loads(row["check_random_ratios"]) == pytest.approx(check.random_ratios)
            assert row["check_forward_passes"] == check.forward_passes > 0
            assert row["check_seconds"] > 0
            # The check's deletion removes the units the evaluation's PR masks: same k,
            # same ranking, so the same two words.
            masked = json.loads(row["masked_units"])
            assert len(masked) == row["check_k"] == len(check.curve) - 1
    # leave-one-out's unmasked score is reused: its check scores one sequence fewer
    for key in ("sea", "fruit"):
        fewer = rows[(key, "grad_norm")]["check_forward_passes"]
        assert rows[(key, "leave_one_out")]["check_forward_passes"] == fewer - 1
    # A prompt of k units: the evaluation masks both, the check has nothing left to compare.
    short = rows[("hi", "grad_norm")]
    assert short["error"] is None and short["pr"] is not None
    assert short["check_verdict"].startswith("not checked: k (2) is not below")
    assert short["check_k"] == 2
    assert all(short[c] is None for c in ("check_faithful", "check_deletion_ratio", "check_lds"))


def test_an_older_results_file_opens_reads_and_keeps_its_rows_unchecked(tiny_lm, tmp_path):
    """A file written before the check: it gains the columns on open, its rows are reused
    as they are (the check's columns empty, never filled in behind the user's back), and
    its table's other numbers are unchanged."""
    cfg = _config(methods=["grad_norm", "random"])
    data = _data(tmp_path)
    first = run_evaluation(data, tmp_path, cfg, lm=tiny_lm, show_progress=False)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:  # as the version before the check wrote it
        for name in CHECK_NAMES:
            conn.execute(f"ALTER TABLE rows DROP COLUMN {name}")
    store = ResultStore(tmp_path / DB_NAME)
    try:
        have = [r["name"] for r in store.conn.execute("PRAGMA table_info(rows)")]
        assert have[-len(CHECK_NAMES) :] == CHECK_NAMES  # added last, as in a fresh file
    finally:
        store.close()
    again = run_evaluation(data, tmp_path, cfg, lm=tiny_lm, show_progress=False)
    assert again.computed == 0 and again.reused == 6
    for row in _rows(tmp_path / DB_NAME).values():
        assert all(row[name] is None for name in CHECK_NAMES)
    before, after = first.table.without_timing(), again.table.without_timing()
    checks = ("check_deletion_ratio", "check_lds", "check_faithful")
    for method in cfg.methods:
        assert before["methods"][method]["check_deletion_ratio"]["n"] == 2  # "hi" has none
        for key in checks:
            assert after["methods"][method][key]["mean"] is None
            assert after["methods"][method][key]["n"] == 0
            before["methods"][method].pop(key), after["methods"][method].pop(key)
    assert before == after
    assert "as few as 0" in again.table.caption()


def _row(prompt: str, method: str, ratio, lds, faithful, pr: float) -> dict:
    return {
        "prompt_key": prompt,
        "method": method,
        "pr": pr,
        "check_deletion_ratio": ratio,
        "check_lds": lds,
        "check_faithful": faithful,
    }


def test_the_tables_check_columns_are_computed_from_the_rows():
    rows = [
        _row("p1", "a", 0.2, 0.9, 1, 0.5),
        _row("p1", "b", 0.9, -0.1, 0, 0.8),
        _row("p2", "a", 0.4, 0.7, 1, 0.6),
        _row("p2", "b", 1.1, 0.3, 0, 0.9),
        _row("p3", "a", 0.3, None, None, 0.4),  # a check that could not be computed
        _row("p3", "b", 0.6, 0.5, 1, 0.7),
        _row("p4", "a", None, None, None, 0.3),  # a row stored before the check
        _row("p4", "b", 0.8, 0.1, 0, 1.0),
    ]
    table = build_table(rows, ["a", "b"], seed=0)
    assert table.n == 4
    expected = {
        ("a", "check_deletion_ratio"): [0.2, 0.4, 0.3],
        ("a", "check_lds"): [0.9, 0.7],
        ("a", "check_faithful"): [1.0, 1.0],
        ("b", "check_deletion_ratio"): [0.9, 1.1, 0.6, 0.8],
        ("b", "check_lds"): [-0.1, 0.3, 0.5, 0.1],
        ("b", "check_faithful"): [0.0, 0.0, 1.0, 0.0],
    }
    for (method, key), values in expected.items():
        cell = table.cells[method][key]
        assert cell.n == len(values)
        assert (cell.mean, cell.low, cell.high) == mean_interval(values, n_resamples=1000, seed=0)
    assert table.cells["b"]["check_faithful"].mean == 0.25  # one prompt of four faithful
    assert table.cells["a"]["pr"].mean == pytest.approx(0.45)  # over all four prompts
    assert "as few as 2" in table.caption()
    # The files keep every earlier column in its place and add the check's last.
    header = table.to_csv().splitlines()[0].split(",")
    keys = [key for key, _, _ in COLUMNS]
    assert keys[-3:] == ["check_deletion_ratio", "check_lds", "check_faithful"]
    assert header[-9:] == [f"{k}{end}" for k in keys[-3:] for end in ("", "_low", "_high")]
    markdown = table.to_markdown()
    assert "check deletion ↓ | check LDS ↑ | check faithful ↑ |" in markdown
    assert "| b |" in markdown and "0.250 [0.000, 0.750]" in markdown
    json_methods = table.to_dict()["methods"]
    assert json_methods["a"]["check_lds"]["n"] == 2
