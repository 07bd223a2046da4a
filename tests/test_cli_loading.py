"""Loading, devices and batch-run failures reach the user as one line, before the work.

Every case here used to end in a traceback or after a model had loaded; now each is
one `error:` line with exit code 2, and where the problem needs no model, the model
is never loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from promptxray import explain, load_model
from promptxray.cli import app
from promptxray.errors import InvalidParameterError, ModelLoadError
from promptxray.evaluation.metrics import METRIC_NAMES
from promptxray.evaluation.table import build_table
from promptxray.model import resolve_placement
from promptxray.model.provision import gguf_cache_folder

runner = CliRunner()


def assert_user_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and fragment in lines[-1], result.stderr
    assert "Traceback" not in result.output


@pytest.fixture
def no_load(monkeypatch):
    monkeypatch.setattr(
        "promptxray.cli.common.load_lm", lambda *a, **k: pytest.fail("loaded a model")
    )


def test_a_folder_that_is_not_a_model_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = runner.invoke(app, ["explain", "Hi there", "--model", str(tmp_path)])
    assert_user_error(result, "without a config.json")


def test_unreadable_weights_are_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(ModelLoadError, match="Could not load model"):
        load_model(str(tmp_path))
    result = runner.invoke(app, ["explain", "Hi there", "--model", str(tmp_path)])
    assert_user_error(result, "Could not load model")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without CUDA")
def test_a_device_torch_cannot_use_is_refused_before_loading(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr("promptxray.model.loading._source", boom)
    with pytest.raises(InvalidParameterError, match="needs CUDA"):
        load_model(device="cuda")
    result = runner.invoke(app, ["explain", "Hi there", "--device", "cuda:1"])
    assert_user_error(result, "needs CUDA")


def test_unknown_device_and_dtype_are_refused(no_load, tmp_path):
    assert_user_error(runner.invoke(app, ["explain", "Hi", "--device", "tpu"]), "device")
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "The sky is blue today."}\n')
    result = runner.invoke(
        app, ["evaluate", "--data", str(data), "--out", str(tmp_path / "o"), "--dtype", "int8"]
    )
    assert_user_error(result, "Unknown dtype 'int8'")


def test_auto_picks_float32_on_cpu_and_names_the_choice():
    placement = resolve_placement("cpu", "auto")
    assert placement.dtype is torch.float32 and placement.auto_dtype
    assert placement.describe() == "cpu float32 (dtype picked by auto)"
    assert resolve_placement("cpu", "bf16").dtype is torch.bfloat16


def test_explain_refuses_a_dtype_it_would_ignore(tiny_lm):
    with pytest.raises(InvalidParameterError, match="loaded already"):
        explain("The sky is blue.", model=tiny_lm, target=" yes", dtype="bfloat16")


def test_the_cli_says_where_the_model_runs(monkeypatch, tiny_lm):
    monkeypatch.setattr("promptxray.api.load_model", lambda *a, **k: tiny_lm)
    result = runner.invoke(app, ["explain", "The sky is blue.", "--target", " yes"])
    assert result.exit_code == 0, result.output
    assert "model: tiny-random-llama on cpu float32" in result.stderr


def test_evaluate_out_that_cannot_be_written_fails_before_loading(no_load, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "The sky is blue today."}\n')
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        result = runner.invoke(
            app,
            ["evaluate", "--data", str(data), "--out", str(locked / "run"), "--methods", "random"],
        )
    finally:
        locked.chmod(0o700)
    assert_user_error(result, "Cannot keep results in")


def test_evaluate_refuses_a_k_no_prompt_has(no_load, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "The sky is blue today."}\n{"prompt": "Short one."}\n')
    result = runner.invoke(
        app, ["evaluate", "--data", str(data), "--out", str(tmp_path / "o"), "--k", "500"]
    )
    assert_user_error(result, "the longest has 5 word units")


def test_evaluate_exits_non_zero_when_every_row_failed(monkeypatch, tiny_lm, tmp_path):
    monkeypatch.setattr("promptxray.cli.common.load_lm", lambda *a, **k: tiny_lm)
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "Hi"}\n{"prompt": "Yo"}\n')
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "o"),
            "--methods",
            "leave_one_out",
            "--granularity",
            "token",
            "--k",
            "40",
            "--max-new-tokens",
            "3",
            "--no-sbert",
        ],
    )
    assert_user_error(result, "first error:")
    assert (tmp_path / "o" / "results.sqlite").exists()  # the failed rows are kept


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "promptxray", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "explain" in done.stdout


def test_the_evaluate_table_fits_100_columns():
    methods = ["random", "integrated_gradients", "leave_one_out", "xprompt", "grad_norm"]
    rows = []
    for p in range(4):
        for i, m in enumerate(methods):
            value = 0.1234567 + i / 7 + p / 100
            row = {"prompt_key": p, "method": m, **dict.fromkeys(METRIC_NAMES, value)}
            rows.append({**row, "pr_seq_log10": -12.345, "seconds": 31.4, "forward_passes": 145})
    table = build_table(rows, methods)
    console = Console(width=200, record=True)
    console.print(table.rich())
    lines = console.export_text().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 100
    assert any("integrated_gradients" in line and "-12.3" in line for line in lines)


def test_a_gguf_cache_key_follows_the_file(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"one")
    first = gguf_cache_folder(gguf)
    assert gguf_cache_folder(gguf) == first  # the same file: the same cache
    gguf.write_bytes(b"other")
    os.utime(gguf, ns=(1, 1))
    assert gguf_cache_folder(gguf) != first  # replaced: never the stale copy
    assert first.name.startswith("m-")


def test_a_broken_gguf_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTXRAY_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"GGUF but not really")
    with pytest.raises(ModelLoadError, match="as a GGUF model"):
        load_model(str(gguf))
    assert not any(Path(tmp_path / "cache").rglob("model.safetensors"))


def test_a_target_read_from_a_file_is_marked_as_given(monkeypatch, tiny_lm, tmp_path):
    monkeypatch.setattr("promptxray.cli.common.load_lm", lambda *a, **k: tiny_lm)
    answer = tmp_path / "answer.txt"
    answer.write_text(" Blue, mostly.\n")
    result = runner.invoke(
        app,
        ["explain", "What colour is the sky?", "--target", f"@{answer}", "--json", "-"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["output"] == " Blue, mostly."  # the file's trailing newline is not the answer's
    assert data["record"]["provenance"]["output_source"] == "given"
    own = explain("What colour is the sky?", model=tiny_lm, max_new_tokens=3)
    assert own.metadata["output_source"] == "generated"
    missing = runner.invoke(app, ["explain", "Hi", "--target", f"@{tmp_path / 'nope.txt'}"])
    assert_user_error(missing, "Target file not found")
