"""The evaluation harness: bad lines, resumability, reuse of outputs, the scorer's numbers."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
import torch

from promptxray.errors import InvalidParameterError
from promptxray.evaluation import EvalConfig, read_prompts, run_evaluation
from promptxray.evaluation.metrics import FaithfulnessScorer
from promptxray.evaluation.store import DB_NAME
from promptxray.masking import keep_only, mask_context
from promptxray.methods import REGISTRY
from promptxray.targets import build_problem

PROMPTS = [
    "Write a short poem about the sea and the wind.",
    "List three fruits that are red.",
    "Explain why the sky looks blue during the day.",
]


def _methods() -> list[str]:
    wanted = ["random", "grad_norm", "leave_one_out", "xprompt"]
    return [m for m in wanted if m in REGISTRY]


def _config(**overrides) -> EvalConfig:
    base = dict(
        methods=_methods(),
        k=2,
        granularity="word",
        max_new_tokens=6,
        use_sbert=False,
    )
    base.update(overrides)
    return EvalConfig(**base)


@pytest.fixture()
def data_file(tmp_path):
    lines = [json.dumps({"id": f"p{i}", "prompt": p}) for i, p in enumerate(PROMPTS)]
    lines.insert(1, "{not json")
    lines.insert(3, json.dumps({"id": "empty", "prompt": "   "}))
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class _Stop(Exception):
    pass


def test_read_prompts_reports_bad_lines(data_file):
    records, bad = read_prompts(data_file)
    assert [r.key for r in records] == ["p0", "p1", "p2"]
    assert [r.line for r in records] == [1, 3, 5]
    assert [b.line for b in bad] == [2, 4]
    assert "JSON" in bad[0].reason and "prompt" in bad[1].reason
    with pytest.raises(InvalidParameterError):
        read_prompts(data_file.parent / "missing.jsonl")


def test_resume_recomputes_nothing_and_matches_uninterrupted(tiny_lm, data_file, tmp_path):
    cfg = _config()
    full = run_evaluation(data_file, tmp_path / "full", cfg, lm=tiny_lm, show_progress=False)
    n_rows = 3 * len(cfg.methods)
    assert full.computed == n_rows and full.reused == 0
    assert [b.line for b in full.bad_lines] == [2, 4]

    seen: list[dict] = []

    def stop_after_two(row):
        seen.append(row)
        if len(seen) == 2:
            raise _Stop

    out = tmp_path / "resumed"
    with pytest.raises(_Stop):
        run_evaluation(data_file, out, cfg, lm=tiny_lm, on_row=stop_after_two, show_progress=False)
    with sqlite3.connect(out / DB_NAME) as conn:
        assert conn.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == 2

    generated_before = tiny_lm.cost.forward_calls
    resumed = run_evaluation(data_file, out, cfg, lm=tiny_lm, show_progress=False)
    assert resumed.reused == 2 and resumed.computed == n_rows - 2
    assert tiny_lm.cost.forward_calls > generated_before

    again = run_evaluation(data_file, out, cfg, lm=tiny_lm, show_progress=False)
    assert again.computed == 0 and again.reused == n_rows
    assert again.table.to_markdown() == resumed.table.to_markdown()
    # Wall-clock seconds differ between runs; every other cell is identical.
    assert resumed.table.without_timing() == full.table.without_timing()
    for name in ("table.md", "table.csv", "table.json"):
        assert (out / name).read_text(encoding="utf-8")


def test_outputs_are_stored_once_and_reused(tiny_lm, data_file, tmp_path):
    cfg = _config(methods=["grad_norm"])
    run_evaluation(data_file, tmp_path, cfg, lm=tiny_lm, show_progress=False)
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        outputs = conn.execute("SELECT prompt_key, output_ids FROM outputs").fetchall()
        rows = conn.execute("SELECT masked_output, masked_units, bleu FROM rows").fetchall()
    assert sorted(k for k, _ in outputs) == ["p0", "p1", "p2"]
    assert all(json.loads(ids) for _, ids in outputs)
    assert all(len(json.loads(units)) == 2 for _, units, _ in rows)
    assert all(0.0 <= b <= 1.0 for *_, b in rows)

    # A second method on the same prompts reuses the stored outputs: y is not
    # generated again, only y' (the masked prompt's continuation), once per row.
    calls: dict[str, int] = {"generate": 0, "generate_from": 0}

    def counting(name):
        original = getattr(tiny_lm, name)

        def wrapper(*a, **kw):
            calls[name] += 1
            return original(*a, **kw)

        return wrapper

    tiny_lm.generate = counting("generate")
    tiny_lm.generate_from = counting("generate_from")
    try:
        cfg2 = _config(methods=["grad_x_input"])
        report = run_evaluation(data_file, tmp_path, cfg2, lm=tiny_lm, show_progress=False)
    finally:
        del tiny_lm.generate
        del tiny_lm.generate_from
    assert report.computed == 3
    assert calls == {"generate": 0, "generate_from": 3}


def test_limit_and_bad_settings(tiny_lm, data_file, tmp_path):
    report = run_evaluation(
        data_file,
        tmp_path,
        _config(methods=["grad_norm"], limit=1),
        lm=tiny_lm,
        show_progress=False,
    )
    assert report.prompts == 1 and report.table.counts == {"grad_norm": 1}
    with pytest.raises(InvalidParameterError):
        run_evaluation(data_file, tmp_path, _config(masking="blur"), lm=tiny_lm)
    with pytest.raises(InvalidParameterError):
        run_evaluation(data_file, tmp_path, _config(k=0), lm=tiny_lm)


def test_a_row_key_holds_only_its_own_methods_parameters(tiny_lm, data_file, tmp_path):
    """Changing iterations recomputes xprompt_paper rows, never grad_norm's."""
    cfg = _config(methods=["grad_norm", "xprompt_paper"], iterations=2, limit=2)
    first = run_evaluation(data_file, tmp_path, cfg, lm=tiny_lm, show_progress=False)
    assert first.computed == 4
    again = run_evaluation(
        data_file,
        tmp_path,
        _config(**{**cfg.__dict__, "iterations": 3}),
        lm=tiny_lm,
        show_progress=False,
    )
    assert again.reused == 2 and again.computed == 2  # the grad_norm rows stay
    assert json.loads(cfg.params_key("grad_norm")) == {"batch_size": 16, "sbert": False}
    paper = json.loads(cfg.params_key("xprompt_paper"))
    assert paper["iterations"] == 2 and paper["k"] == 2 and paper["masking"] == "delete"


def test_a_new_algorithm_version_recomputes_only_that_methods_rows(
    tiny_lm, data_file, tmp_path, monkeypatch
):
    """Rows of an older algorithm are not passed off as the new one's; version 1 keeps
    the keys rows had before methods had versions."""
    import dataclasses

    from promptxray.methods import REGISTRY, get_method

    cfg = _config(methods=["grad_norm", "xprompt_paper"], iterations=2, limit=2)
    assert "version" not in json.loads(cfg.params_key("xprompt_paper"))
    first = run_evaluation(data_file, tmp_path, cfg, lm=tiny_lm, show_progress=False)
    assert first.computed == 4
    newer = dataclasses.replace(get_method("xprompt_paper"), version=2)
    monkeypatch.setitem(REGISTRY, "xprompt_paper", newer)
    assert json.loads(cfg.params_key("xprompt_paper"))["version"] == 2
    again = run_evaluation(data_file, tmp_path, cfg, lm=tiny_lm, show_progress=False)
    assert again.reused == 2 and again.computed == 2


def test_a_parameter_no_method_takes_is_refused_before_any_work(tiny_lm, data_file, tmp_path):
    with pytest.raises(InvalidParameterError, match="takes the parameter 'iterations'"):
        run_evaluation(
            data_file, tmp_path, _config(methods=["grad_norm"], iterations=5), lm=tiny_lm
        )
    with pytest.raises(InvalidParameterError, match="leave_one_out: masking"):
        run_evaluation(
            data_file,
            tmp_path,
            _config(methods=["leave_one_out"], params={"masking": "x"}),
            lm=tiny_lm,
        )


def test_k_above_unit_count_becomes_an_error_row(tiny_lm, tmp_path):
    path = tmp_path / "short.jsonl"
    lines = [{"prompt": "Hello there"}, {"prompt": "The sea is calm and the sky is grey."}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    cfg = _config(methods=["grad_norm"], k=5)
    report = run_evaluation(path, tmp_path / "o", cfg, lm=tiny_lm, show_progress=False)
    assert report.computed == 2 and report.table.counts == {"grad_norm": 1}
    assert len(report.errors) == 1 and "k=5" in report.errors[0][2]


def test_a_k_no_prompt_has_is_refused_before_the_model(tmp_path):
    path = tmp_path / "short.jsonl"
    path.write_text(json.dumps({"prompt": "Hello there"}) + "\n", encoding="utf-8")
    cfg = _config(methods=["grad_norm"], k=5)
    with pytest.raises(InvalidParameterError, match="the longest has 2 word units"):
        run_evaluation(path, tmp_path / "o", cfg, lm=lambda: pytest.fail("loaded"))


def test_scorer_matches_independent_computation(tiny_lm):
    problem = build_problem(tiny_lm, "Name two colours of the sea at night.", max_new_tokens=6)
    units = problem.units("word")
    scorer = FaithfulnessScorer(tiny_lm, problem, units, max_new_tokens=6, use_sbert=False)
    ranking = list(range(len(units)))[::-1]
    result = scorer.score(ranking, k=2)

    target = problem.target_ids
    start = problem.target_start

    def mean_logprob(context):
        return float(tiny_lm.score(context.ids + target, len(context.ids)).double().mean())

    original = float(tiny_lm.score(problem.ids, start).double().mean())
    masked = mask_context(tiny_lm, problem, units, ranking[:2])
    expected_pr = math.exp(mean_logprob(masked) - original)
    assert result.pr == pytest.approx(expected_pr, rel=1e-4)
    assert result.kl >= 0.0
    assert result.masked_units == [units[i].text for i in ranking[:2]]

    n = len(units)
    ks = [min(k, n) for k in (1, 3, 5, 10)]
    comp = sum(
        original - mean_logprob(mask_context(tiny_lm, problem, units, ranking[:k])) for k in ks
    )
    suff = sum(original - mean_logprob(keep_only(tiny_lm, problem, units, ranking[:k])) for k in ks)
    assert result.comprehensiveness == pytest.approx(comp / len(ks), abs=1e-4)
    assert result.sufficiency == pytest.approx(suff / len(ks), abs=1e-4)

    # The zero operator: PR agrees with scoring the zeroed context in a batch.
    zero = FaithfulnessScorer(tiny_lm, problem, units, "zero", max_new_tokens=6, use_sbert=False)
    zeroed = mask_context(tiny_lm, problem, units, ranking[:2], operator="zero")
    both = tiny_lm.score_variants([zeroed, mask_context(tiny_lm, problem, units, [])], target)
    expected_zero = math.exp(float((both[0].double() - both[1].double()).mean()))
    assert zero.score(ranking, k=2).pr == pytest.approx(expected_zero, rel=1e-4)
    assert torch.isfinite(zero.baseline.log_probs).all()
    with pytest.raises(InvalidParameterError):
        scorer.score(ranking, k=n + 1)


def test_evaluate_command_prints_table_and_summary(tiny_lm, data_file, tmp_path):
    from rich.console import Console

    from promptxray.cli.evaluate import evaluate_command, parse_methods

    assert parse_methods(" grad_norm, random ,grad_norm") == ["grad_norm", "random"]
    with pytest.raises(InvalidParameterError):
        parse_methods(" , ")
    console = Console(record=True, width=250)
    loads = []
    report = evaluate_command(
        data_file,
        tmp_path,
        "grad_norm",
        k=1,
        max_new_tokens=4,
        lm=lambda: loads.append(1) or tiny_lm,
        sbert=False,
        progress=False,
        console=console,
    )
    text = console.export_text()
    assert loads == [1] and report.computed == 3
    assert "grad_norm" in text and "3 rows computed, 0 reused" in text
    assert "2 bad lines skipped" in text and "table.md" in text
    # Bad settings fail before the model is loaded.
    with pytest.raises(InvalidParameterError):
        evaluate_command(data_file, tmp_path, "grad_norm", k=0, lm=lambda: loads.append(1))
    assert loads == [1]


def test_cli_evaluate_runs_and_resumes(tiny_lm, data_file, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from promptxray import cli

    monkeypatch.setattr("promptxray.cli.common.load_lm", lambda *a, **kw: tiny_lm)
    args = ["evaluate", "--data", str(data_file), "--out", str(tmp_path / "run")]
    args += ["--methods", "grad_norm,random", "--k", "1", "--max-new-tokens", "4", "--no-sbert"]
    first = CliRunner().invoke(cli.app, args)
    assert first.exit_code == 0, first.output
    said = " ".join(first.output.split())  # rich wraps long lines
    assert "6 rows computed, 0 reused" in said and "line 2 skipped" in said
    second = CliRunner().invoke(cli.app, args + ["--limit", "2"])
    assert second.exit_code == 0 and "0 rows computed, 4 reused" in " ".join(second.output.split())
    table = (tmp_path / "run" / "table.md").read_text(encoding="utf-8")
    assert "Mean over the same 2 prompts for every method" in table
    bad = CliRunner().invoke(cli.app, ["evaluate", "--data", str(tmp_path / "x.jsonl"), "-o", "o"])
    assert bad.exit_code == 2 and "Data file not found" in bad.output


def test_the_stop_token_is_part_of_y_when_generation_ended_early(tiny_lm, monkeypatch):
    """XPrompt's code scores y with its end-of-sequence token; the CLI output drops it."""
    eos = tiny_lm.tokenizer.eos_token_id
    word = tiny_lm.tokenizer.encode(" fine", add_special_tokens=False)[0]

    def fake_generate(input_ids=None, **kwargs):
        return torch.cat([input_ids, torch.tensor([[word, eos, eos]])], dim=1)

    monkeypatch.setattr(tiny_lm.model, "generate", fake_generate)
    ids = tiny_lm.encode_prompt("Hi").ids
    assert tiny_lm.generate(ids, max_new_tokens=8) == [word]
    assert tiny_lm.generate(ids, max_new_tokens=8, keep_stop=True) == [word, eos]
