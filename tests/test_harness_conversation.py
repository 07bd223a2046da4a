"""The evaluation harness on conversations and supplied targets (issue 9, deliverable 4).

Rows may give `messages` instead of `prompt`, and a `target` to measure against
instead of the model's generation; masking reaches units of earlier turns; the
stored rows' key holds every turn and the target; bad rows are one line each.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3

import pytest

from promptxray.errors import InvalidParameterError
from promptxray.evaluation import EvalConfig, read_prompts, run_evaluation
from promptxray.evaluation.metrics import FaithfulnessScorer, bleu
from promptxray.evaluation.rows import PromptRecord
from promptxray.evaluation.store import DB_NAME
from promptxray.masking import mask_context, unit_positions
from promptxray.model import Message
from promptxray.targets import build_problem

CONVERSATION = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "Name a colour of the sea."},
    {"role": "assistant", "content": "Blue, mostly."},
    {"role": "user", "content": "And at night?"},
]
TARGET = " Dark grey, almost black."


def _config(**overrides) -> EvalConfig:
    base = dict(methods=["grad_norm"], k=2, granularity="word", max_new_tokens=5, use_sbert=False)
    base.update(overrides)
    return EvalConfig(**base)


def _write(path, rows) -> None:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _rows(folder) -> list[dict]:
    with sqlite3.connect(folder / DB_NAME) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM rows ORDER BY line, method")]


def _outputs(folder) -> list[dict]:
    with sqlite3.connect(folder / DB_NAME) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM outputs ORDER BY line")]


def test_a_conversation_row_runs_and_masks_units_of_every_turn(tiny_lm, tmp_path):
    data = tmp_path / "chat.jsonl"
    _write(data, [{"id": "chat", "messages": CONVERSATION}])
    # Turn units, all four masked: the top units necessarily include earlier turns.
    cfg = _config(methods=["leave_one_out", "random"], granularity="turn", k=4)
    report = run_evaluation(data, tmp_path / "run", cfg, lm=tiny_lm, show_progress=False)
    assert report.computed == 2 and not report.errors and report.table.n == 1

    (output,) = _outputs(tmp_path / "run")
    assert json.loads(output["messages"]) == CONVERSATION
    assert output["prompt"] == "And at night?" and output["output_source"] == "generated"
    for row in _rows(tmp_path / "run"):
        details = json.loads(row["details"])
        assert row["output_source"] == "generated" and row["n_units"] == 4
        assert sorted(details["masked_turns"]) == [0, 1, 2, 3]
        assert sorted(json.loads(row["masked_units"])) == sorted(m["content"] for m in CONVERSATION)
        # What the regeneration read, for people: every turn with its units cut out.
        assert [m["role"] for m in details["masked_messages"]] == [m["role"] for m in CONVERSATION]
        assert all(m["content"] == "" for m in details["masked_messages"])


def test_word_units_of_a_conversation_carry_their_turns(tiny_lm, tmp_path):
    data = tmp_path / "chat.jsonl"
    _write(data, [{"messages": CONVERSATION}])
    report = run_evaluation(data, tmp_path / "run", _config(k=3), lm=tiny_lm, show_progress=False)
    assert report.computed == 1 and not report.errors
    (row,) = _rows(tmp_path / "run")
    details = json.loads(row["details"])
    assert len(details["masked_turns"]) == 3
    assert all(turn in range(len(CONVERSATION)) for turn in details["masked_turns"])


def test_masking_an_earlier_assistant_turn_is_measured_end_to_end(tiny_lm):
    """The scorer removes an earlier turn's unit by its token positions, and PR is the
    ratio an independent scoring of that masked context gives."""
    problem = build_problem(tiny_lm, messages=CONVERSATION, max_new_tokens=5)
    units = problem.units("word")
    earlier = next(i for i, u in enumerate(units) if u.turn == 2 and u.text.strip() == "mostly.")
    ranking = [earlier] + [i for i in range(len(units)) if i != earlier]
    scorer = FaithfulnessScorer(tiny_lm, problem, units, max_new_tokens=5, use_sbert=False)
    result = scorer.score(ranking, k=1)

    masked = mask_context(tiny_lm, problem, units, [earlier])
    dropped = unit_positions(problem, units, [earlier])
    assert dropped and len(masked.ids) == len(problem.context_ids) - len(dropped)
    target, start = problem.target_ids, problem.target_start
    original = float(tiny_lm.score(problem.ids, start).double().mean())
    masked_mean = float(tiny_lm.score(masked.ids + target, len(masked.ids)).double().mean())
    assert result.pr == pytest.approx(math.exp(masked_mean - original), rel=1e-4)
    assert result.details["masked_turns"] == [2]
    assert result.details["masked_messages"][2] == {"role": "assistant", "content": "Blue,"}
    assert result.details["masked_messages"][3] == CONVERSATION[3]


def test_a_given_target_is_what_the_row_measures_against(tiny_lm, tmp_path):
    data = tmp_path / "given.jsonl"
    prompt = "Describe the sea at night in a few words."
    answered = [*CONVERSATION, {"role": "assistant", "content": TARGET}]
    _write(data, [{"id": "p", "prompt": prompt, "target": TARGET}, {"messages": answered}])

    calls = {"generate": 0}
    original_generate = tiny_lm.generate

    def counting(*a, **kw):
        calls["generate"] += 1
        return original_generate(*a, **kw)

    tiny_lm.generate = counting
    try:
        report = run_evaluation(data, tmp_path / "run", _config(), lm=tiny_lm, show_progress=False)
        again = run_evaluation(data, tmp_path / "run", _config(), lm=tiny_lm, show_progress=False)
    finally:
        del tiny_lm.generate
    assert calls["generate"] == 0  # y is the supplied text, never the model's generation
    assert report.computed == 2 and not report.errors
    assert again.computed == 0 and again.reused == 2

    outputs = _outputs(tmp_path / "run")
    assert [o["output"] for o in outputs] == [TARGET, TARGET]
    assert {o["output_source"] for o in outputs} == {"given"}
    assert outputs[0]["messages"] is None and json.loads(outputs[1]["messages"]) == CONVERSATION

    first = _rows(tmp_path / "run")[0]
    assert first["output_source"] == "given"
    assert first["bleu"] == pytest.approx(bleu(first["masked_output"], TARGET))
    # PR and KL are on the supplied tokens: the unmasked baseline is log p(target | prompt).
    problem = build_problem(tiny_lm, prompt, target=TARGET)
    expected = float(tiny_lm.score(problem.ids, problem.target_start).double().mean())
    details = json.loads(first["details"])
    assert details["original_mean_logprob"] == pytest.approx(expected, abs=1e-4)


def _record(context: list[dict], target: str | None = None) -> PromptRecord:
    return PromptRecord(
        1, "same-id", tuple(Message(m["role"], m["content"]) for m in context), target
    )


def test_the_row_key_holds_every_turn_and_the_target():
    changed = [{**CONVERSATION[0], "content": "You answer at length."}, *CONVERSATION[1:]]
    base = _record(CONVERSATION)
    assert _record(changed).sha != base.sha
    assert _record(CONVERSATION, TARGET).sha != base.sha
    assert _record(CONVERSATION, TARGET).sha != _record(CONVERSATION, " Black.").sha
    # A plain prompt keeps the key it always had, so older result folders still resume.
    plain = _record([{"role": "user", "content": "Hi there"}])
    assert plain.sha == hashlib.sha256(b"Hi there").hexdigest()[:16]
    with_system = _record([CONVERSATION[0], {"role": "user", "content": "Hi there"}])
    assert with_system.sha != plain.sha


def test_rows_differing_only_in_an_earlier_turn_are_not_mixed_up(tiny_lm, tmp_path):
    data = tmp_path / "chat.jsonl"
    _write(data, [{"id": "chat", "messages": CONVERSATION}])
    cfg = _config()
    first = run_evaluation(data, tmp_path / "run", cfg, lm=tiny_lm, show_progress=False)
    changed = [CONVERSATION[0], CONVERSATION[1], {"role": "assistant", "content": "Green."}]
    _write(data, [{"id": "chat", "messages": [*changed, CONVERSATION[3]]}])
    second = run_evaluation(data, tmp_path / "run", cfg, lm=tiny_lm, show_progress=False)
    assert first.computed == 1 and second.computed == 1 and second.reused == 0
    assert len(_rows(tmp_path / "run")) == 2 and len(_outputs(tmp_path / "run")) == 2


BAD_ROWS = [
    ({"messages": "Hello"}, "Messages must be"),
    ({"messages": [{"role": "bot", "content": "Hi"}]}, "unknown role 'bot'"),
    ({"prompt": "Hi", "messages": CONVERSATION}, "not both"),
    ({"system_prompt": "Be brief.", "messages": CONVERSATION}, "not both"),
    ({"messages": []}, "conversation is empty"),
    ({"prompt": "   "}, "prompt is empty"),
    ({"id": "nothing"}, "Give a prompt or messages"),
    ({"messages": [{"role": "user", "content": ""}]}, "Turn 0 (user) is empty"),
    ({"prompt": "Hi", "target": ""}, "target is empty"),
    ({"prompt": "Hi", "target": ["x"]}, "'target' must be text"),
    ({"messages": [*CONVERSATION, {"role": "assistant", "content": "A"}], "target": "B"}, "not"),
    ({"prompt": "Hi", "target": " Blue", "contrast": " Red"}, "'contrast' is not evaluated"),
]


def test_bad_rows_are_one_line_each_naming_the_row(tmp_path):
    data = tmp_path / "bad.jsonl"
    _write(data, [{"prompt": "A good row."}] + [row for row, _ in BAD_ROWS])
    records, bad = read_prompts(data)
    assert [r.line for r in records] == [1]
    assert [b.line for b in bad] == list(range(2, 2 + len(BAD_ROWS)))
    for b, (_, expected) in zip(bad, BAD_ROWS, strict=True):
        assert expected in b.reason and "\n" not in b.reason, (b.line, b.reason)


def test_a_file_of_only_bad_rows_is_refused_before_the_model(tmp_path):
    data = tmp_path / "bad.jsonl"
    _write(data, [{"messages": [{"role": "bot", "content": "Hi"}]}, {"messages": "Hi"}])
    with pytest.raises(InvalidParameterError) as caught:
        run_evaluation(data, tmp_path / "o", _config(), lm=lambda: pytest.fail("loaded"))
    message = str(caught.value)
    assert "line 1" in message and "unknown role 'bot'" in message and "1 more" in message
    assert "\n" not in message


def test_cli_evaluate_on_a_bad_row_exits_2(tiny_lm, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from promptxray import cli

    monkeypatch.setattr("promptxray.cli.common.load_lm", lambda *a, **kw: pytest.fail("loaded"))
    data = tmp_path / "bad.jsonl"
    _write(data, [{"prompt": "Hi", "messages": CONVERSATION}])
    args = ["evaluate", "--data", str(data), "--out", str(tmp_path / "run"), "--no-sbert"]
    result = CliRunner().invoke(cli.app, args + ["--methods", "grad_norm", "--k", "1"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "error:" in said and "line 1" in said and "not both" in said

    # Next to good rows a bad row is skipped with its line and problem, and the run goes on.
    monkeypatch.setattr("promptxray.cli.common.load_lm", lambda *a, **kw: tiny_lm)
    _write(data, [{"messages": CONVERSATION}, {"messages": [{"role": "bot", "content": "Hi"}]}])
    mixed = CliRunner().invoke(
        cli.app, args + ["--methods", "grad_norm", "--k", "1", "--max-new-tokens", "4"]
    )
    said = " ".join(mixed.output.split())
    assert mixed.exit_code == 0, mixed.output
    assert "line 2 skipped" in said and "unknown role 'bot'" in said


def test_an_older_results_file_gains_the_new_columns(tmp_path):
    """Result folders written before conversations still open, and so still resume."""
    from promptxray.evaluation.metrics import METRIC_NAMES
    from promptxray.evaluation.store import ROW_KEY, ResultStore

    metrics = ", ".join(f"{m} REAL" for m in METRIC_NAMES)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:  # the tables as the first version wrote them
        conn.executescript(
            f"""
            CREATE TABLE outputs (
                prompt_key TEXT, prompt_sha TEXT, model TEXT, max_new_tokens INTEGER,
                line INTEGER, prompt TEXT, output TEXT, output_ids TEXT, error TEXT, seconds REAL,
                PRIMARY KEY (prompt_key, prompt_sha, model, max_new_tokens));
            CREATE TABLE rows (
                prompt_key TEXT, prompt_sha TEXT, method TEXT, k INTEGER, granularity TEXT,
                masking TEXT, model TEXT, max_new_tokens INTEGER, params TEXT,
                line INTEGER, error TEXT, operator TEXT, n_units INTEGER, {metrics},
                seconds REAL, forward_passes REAL, backward_passes REAL, eval_seconds REAL,
                masked_output TEXT, masked_units TEXT, details TEXT,
                PRIMARY KEY (prompt_key, prompt_sha, method, k, granularity, masking, model,
                             max_new_tokens, params));
            INSERT INTO rows (prompt_key, prompt_sha, method, k, granularity, masking, model,
                              max_new_tokens, params, line, pr)
                VALUES ('p1', 'abc', 'grad_norm', 2, 'word', 'delete', 'm', 5, '{{}}', 1, 0.25);
            """
        )
    key = ("p1", "abc", "grad_norm", 2, "word", "delete", "m", 5, "{}")
    assert len(key) == len(ROW_KEY)
    store = ResultStore(tmp_path / DB_NAME)
    try:
        for table, columns in (
            ("outputs", {"messages", "output_source"}),
            ("rows", {"output_source"}),
        ):
            have = {r["name"] for r in store.conn.execute(f"PRAGMA table_info({table})")}
            assert columns <= have
        assert store.has_row(key)  # the old row is still found: a rerun reuses it
        (row,) = store.rows_for([key])
        assert row["pr"] == 0.25 and row["output_source"] is None
    finally:
        store.close()
