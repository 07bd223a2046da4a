"""Studies: the file format, part shares, adherence checks, resume and the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import make_tiny_lm

from promptxray.study import StudyConfig, read_study, run_study
from promptxray.study.checks import Check, adherence, count_words
from promptxray.study.measures import part_shares, positional_profile
from promptxray.study.runner import gallery_keys
from promptxray.study.spec import OTHER, RowError, fill_template, parse_row, parts_in_prompt
from promptxray.study.tables import mean_ci


def write_rows(path: Path, rows: list) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n",
        encoding="utf-8",
    )
    return path


SKY = {
    "id": "sky-if",
    "group": "sky",
    "task": "qa",
    "structure": "instruction-first",
    "template": "{instruction} {input}",
    "slots": {"instruction": "Answer in one word:", "input": "What color is the sky?"},
    "checks": {"one_word": True},
}
SKY_LAST = {
    **SKY,
    "id": "sky-il",
    "structure": "instruction-last",
    "template": "{input} {instruction}",
}
STORY = {
    "id": "love",
    "task": "story",
    "structure": "instruction-first",
    "prompt": "Write a six-word story about love. Six words only.",
    "parts": {"instruction": [0, 34], "constraint": "Six words only."},
    "system": "You are a poet.",
    "checks": {"exact_words": 6},
}


# ----- file format -------------------------------------------------------------------------
def test_a_template_with_named_slots_yields_the_slot_spans():
    prompt, parts = fill_template(
        "Q: {input}\n{instruction}", {"input": "Why?", "instruction": "Be brief."}
    )
    assert prompt == "Q: Why?\nBe brief."
    spans = {p.part: (p.start, p.end) for p in parts}
    assert prompt[slice(*spans["input"])] == "Why?"
    assert prompt[slice(*spans["instruction"])] == "Be brief."


def test_part_text_marks_every_occurrence_and_spans_are_checked():
    prompt = "Answer in one word. What is red? Answer in one word."
    parts = parts_in_prompt(prompt, {"constraint": "Answer in one word."})
    assert [(p.start, p.end) for p in parts] == [(0, 19), (33, 52)]
    with pytest.raises(RowError, match="not in the prompt"):
        parts_in_prompt(prompt, {"constraint": "two words"})
    with pytest.raises(RowError, match="a span is"):
        parts_in_prompt(prompt, {"input": [10, 999]})
    with pytest.raises(RowError, match="overlap"):
        parts_in_prompt(prompt, {"input": [0, 10], "instruction": [5, 12]})


def test_bad_rows_are_reported_by_line_and_skipped(tmp_path):
    path = write_rows(
        tmp_path / "s.jsonl",
        [
            SKY,
            {"task": "qa"},  # no prompt
            {**SKY, "slots": {**SKY["slots"], "topic": "x"}, "template": "{topic} {input}"},
            {"prompt": "Hello there", "parts": {"preamble": "Hello"}},  # unknown part name
            {"prompt": "Hello there", "parts": {"input": "Goodbye"}},  # text not in prompt
            {"prompt": "Hello there", "checks": {"rhymes": True}},  # unknown check kind
            "not json",
            STORY,
        ],
    )
    rows, bad = read_study(path)
    assert [r.key for r in rows] == ["sky-if", "love"]
    reasons = {b.line: b.reason for b in bad}
    assert set(reasons) == {2, 3, 4, 5, 6, 7}
    assert "no non-empty 'prompt'" in reasons[2]
    assert "unknown part name 'topic'" in reasons[3]
    assert "unknown part name 'preamble'" in reasons[4]
    assert "not in the prompt" in reasons[5]
    assert "unknown check 'rhymes'" in reasons[6]
    assert "not valid JSON" in reasons[7]


def test_the_system_prompt_is_the_system_part():
    row = parse_row(STORY, 1)
    assert row.system_prompt == "You are a poet."
    assert row.part_names() == ["system", "instruction", "constraint"]


# ----- adherence -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "value", "output", "verdict"),
    [
        ("one_word", True, "Blue.", True),
        ("one_word", True, "The sky is blue.", False),
        ("one_word", True, "  Blue !", True),  # a lone '!' is not a word
        ("exact_words", 6, "Met at dusk, parted at dawn.", True),
        ("exact_words", 6, "Love is all.", False),
        ("max_words", 3, "Love is all.", True),
        ("max_words", 2, "Love is all.", False),
        ("regex", r"^\s*[A-Z][a-z]+\.?$", "Blue.", True),
        ("must_contain", ["love", "heart"], "My Heart, my love", True),
        ("must_contain", "sky", "blue", False),
        ("must_not_contain", "sorry", "I'm SORRY", False),
    ],
)
def test_adherence_checks_on_hand_made_outputs(kind, value, output, verdict):
    assert Check(kind, value).passes(output) is verdict


def test_adherence_of_a_row_is_every_check():
    checks = (Check("max_words", 3), Check("must_contain", "blue"))
    assert adherence(checks, "Blue sky.") == {"max_words": True, "must_contain": True}
    assert adherence(checks, "It is a blue sky") == {"max_words": False, "must_contain": True}
    assert adherence((), "anything") is None
    assert count_words("one, two - three") == 3


# ----- measures on the tiny model ------------------------------------------------------------
class FakeAttribution:
    def __init__(self, units, scores):
        self.units, self.scores = units, scores


def test_part_shares_sum_to_one_and_follow_the_units(tiny_lm):
    from promptxray import attribute, build_problem

    row = parse_row(STORY, 1)
    problem = build_problem(tiny_lm, row.prompt, system_prompt=row.system_prompt, target=" ok")
    attr = attribute(tiny_lm, problem, "grad_x_input", "word")
    shares = part_shares(row, attr)
    assert math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9)
    # Independent computation: |score| of the units inside each part's characters.
    total = sum(abs(s) for s in attr.scores)
    constraint = sum(
        abs(s)
        for u, s in zip(attr.units, attr.scores, strict=True)
        if u.role == "user" and u.span[0] >= 35
    )
    system = sum(abs(s) for u, s in zip(attr.units, attr.scores, strict=True) if u.role == "system")
    assert shares["constraint"] == pytest.approx(constraint / total)
    assert shares["system"] == pytest.approx(system / total)
    assert OTHER not in shares  # every character of this prompt is in a part


def test_positional_profile_puts_mass_where_the_units_are():
    from promptxray.segments import Unit

    row = parse_row({"prompt": "a" * 100}, 1)
    units = [Unit("x", "user", (0, 10), [0]), Unit("y", "user", (90, 100), [1])]
    profile = positional_profile(row, FakeAttribution(units, [1.0, -3.0]))
    assert profile[0] == pytest.approx(0.25) and profile[-1] == pytest.approx(0.75)
    assert sum(profile) == pytest.approx(1.0)


def test_mean_ci_brackets_the_mean_and_skips_single_rows():
    mean, lo, hi = mean_ci([0.1, 0.2, 0.3, 0.4])
    assert mean == pytest.approx(0.25) and lo < mean < hi
    assert mean_ci([0.5]) == (0.5, None, None)


def test_gallery_takes_the_first_group_with_most_structures():
    rows = [parse_row(r, i) for i, r in enumerate([STORY, SKY, SKY_LAST], start=1)]
    assert gallery_keys(rows) == {"love", "sky-if", "sky-il"}


# ----- the run: resume, two models, the report ---------------------------------------------------
def test_study_resumes_and_reports_every_section(tmp_path):
    data = write_rows(tmp_path / "s.jsonl", [SKY, SKY_LAST, STORY])
    second = make_tiny_lm(seed=1)
    loaders = {"tiny-a": make_tiny_lm(seed=0), "tiny-b": second}
    config = StudyConfig(models=["tiny-a", "tiny-b"], method="grad_norm", max_new_tokens=4)
    out = tmp_path / "out"
    first = run_study(data, out, config, loaders=loaders, show_progress=False)
    assert first.computed == 6 and first.reused == 0 and not first.errors
    for r in first.results:
        payload = r["payload"]
        assert math.isclose(sum(payload["shares"].values()), 1.0, abs_tol=1e-6)
        # Each half's shares are over the prompt alone; the second half's pull on the
        # output before it is reported apart.
        assert math.isclose(sum(payload["early"].values()), 1.0, abs_tol=1e-6)
        assert math.isclose(sum(payload["late"].values()), 1.0, abs_tol=1e-6)
        assert 0.0 < payload["late_on_earlier_output"] < 1.0
    page = (out / "report.html").read_text(encoding="utf-8")
    for heading in (
        "Share of attribution per part",
        "Where in the prompt",
        "How importance shifts during generation",
        "Adherence to the instructions",
        "Gallery",
    ):
        assert heading in page
    assert page.count("data:image/png;base64,") >= 4 + 6  # four figures and six heatmaps
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    again = run_study(data, out, config, loaders=loaders, show_progress=False)
    assert again.computed == 0 and again.reused == 6
    assert again.results == first.results
    header = (out / "part_shares.csv").read_text().splitlines()[0]
    assert header.startswith("task,structure,model,n,system_mean")


# ----- the command line --------------------------------------------------------------------------
def test_cli_study_runs_and_refuses_a_file_with_nothing_usable(tmp_path, monkeypatch, tiny_lm):
    from typer.testing import CliRunner

    from promptxray import cli as cli_module

    loads: list = []
    monkeypatch.setattr(
        "promptxray.cli.common.load_lm",
        lambda name, progress=None, **placement: loads.append(name) or tiny_lm,
    )
    runner = CliRunner()
    bad = write_rows(tmp_path / "bad.jsonl", [{"task": "qa"}, {"prompt": "x", "checks": {"z": 1}}])
    result = runner.invoke(cli_module.app, ["study", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == f"error: No usable rows in {bad}."
    assert any("line 1 skipped" in x for x in lines) and any("line 2 skipped" in x for x in lines)
    assert loads == []  # refused before any model was loaded

    good = write_rows(tmp_path / "good.jsonl", [SKY, STORY])
    out = tmp_path / "run"
    args = ["study", str(good), "--out", str(out), "--models", "tiny", "--max-new-tokens", "3"]
    result = runner.invoke(cli_module.app, args)
    assert result.exit_code == 0, result.output
    assert loads == ["tiny"] and (out / "report.html").is_file()
    assert "2 computed, 0 reused, 0 errors" in result.stderr


def test_readings_say_what_the_numbers_say():
    from promptxray.study.readings import read_adherence, read_shares

    def cell(task, structure, share):
        return {
            "task": task,
            "structure": structure,
            "model": "m",
            "n": 4,
            "constraint": (share, None, None),
            "input": (1 - share, None, None),
        }

    sentence = read_shares([cell("qa", "once", 0.2), cell("qa", "twice", 0.42)])
    assert "2.1× higher under twice (42%) than under once (20%)" in sentence
    flat = [
        {
            "task": "qa",
            "structure": s,
            "model": "m",
            "n": 3,
            "adherence": (0.0, None, None),
            "instruction_share": None,
        }
        for s in ("a", "b")
    ]
    assert read_adherence(flat, None) == "Adherence is 0% in every cell."
