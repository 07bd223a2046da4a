"""The faithfulness check in `study`: stored with each row, summarised per cell, in the report."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict

import pytest

from promptxray import attribute, build_problem
from promptxray.intervals import mean_interval
from promptxray.study import StudyConfig, run_study
from promptxray.study.tables import check_table

ROWS = [
    {
        "id": "sky",
        "task": "qa",
        "structure": "instruction-first",
        "template": "{instruction} {input}",
        "slots": {"instruction": "Answer in one word:", "input": "What color is the sky?"},
    },
    {
        "id": "sea",
        "task": "qa",
        "structure": "instruction-first",
        "template": "{instruction} {input}",
        "slots": {"instruction": "Answer briefly:", "input": "Why is the sea salty?"},
    },
]


def test_a_study_row_keeps_its_whole_outputs_check_and_the_report_shows_it(tiny_lm, tmp_path):
    data = tmp_path / "s.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n", encoding="utf-8")
    config = StudyConfig(models=["tiny"], method="grad_norm", max_new_tokens=4)
    out = tmp_path / "out"
    report = run_study(data, out, config, loaders={"tiny": tiny_lm}, show_progress=False)
    assert report.computed == 2 and not report.errors
    for result, row in zip(report.results, report.rows, strict=True):
        stored = result["payload"]["check"]
        problem = build_problem(tiny_lm, row.prompt, max_new_tokens=4)
        expected = asdict(attribute(tiny_lm, problem, "grad_norm", "word").record.check)
        assert stored.pop("seconds") > 0 and expected.pop("seconds") > 0
        assert stored.keys() == expected.keys()
        for name, value in expected.items():
            if isinstance(value, float | list):
                assert stored[name] == pytest.approx(value, rel=1e-9), name
            else:
                assert stored[name] == value, name
        assert stored["k"] == 3 and stored["verdict"]
    with open(out / "check.csv", encoding="utf-8") as fh:
        (cell,) = list(csv.DictReader(fh))
    ratios = [r["payload"]["check"]["deletion_ratio"] for r in report.results]
    verdicts = [float(r["payload"]["check"]["faithful"]) for r in report.results]
    assert float(cell["deletion_ratio_mean"]) == pytest.approx(sum(ratios) / 2, abs=1e-6)
    assert float(cell["faithful_mean"]) == pytest.approx(sum(verdicts) / 2, abs=1e-6)
    with open(out / "rows.csv", encoding="utf-8") as fh:
        lines = list(csv.DictReader(fh))
    assert [line["check_verdict"] for line in lines] == [
        r["payload"]["check"]["verdict"] for r in report.results
    ]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<th>check deletion ratio</th><th>faithful</th>" in page


def _result(task: str, check: dict | None) -> dict:
    payload = {"shares": {"instruction": 1.0}}
    if check is not None:
        payload["check"] = check
    return {"task": task, "structure": "s", "model": "m", "payload": payload}


def test_the_check_table_is_the_mean_of_the_stored_checks_per_cell():
    results = [
        _result("a", {"deletion_ratio": 0.2, "faithful": True}),
        _result("a", {"deletion_ratio": 0.6, "faithful": False}),
        _result("a", {"deletion_ratio": 0.4, "faithful": True}),
        _result("a", {"deletion_ratio": None, "faithful": None}),  # could not be checked
        _result("a", None),  # a row stored before the check
        _result("b", None),
    ]
    a, b = check_table(results)
    assert (a["task"], a["n"]) == ("a", 3)
    assert a["deletion_ratio"] == mean_interval([0.2, 0.6, 0.4], n_resamples=1000, seed=0)
    assert a["faithful"] == mean_interval([1.0, 0.0, 1.0], n_resamples=1000, seed=0)
    assert a["faithful"][0] == pytest.approx(2 / 3)
    assert (b["n"], b["deletion_ratio"], b["faithful"]) == (0, None, None)
