"""--ray without Ray installed: one clear error naming the extra, before any model loads."""

from __future__ import annotations

import builtins

import pytest
from typer.testing import CliRunner

from promptxray import cli as cli_module
from promptxray.distributed import RayOptions
from promptxray.errors import InvalidParameterError
from promptxray.evaluation import EvalConfig, run_evaluation


@pytest.fixture
def no_ray(monkeypatch):
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)


def test_run_evaluation_names_the_extra(no_ray, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "Hello"}\n')
    loads = []
    with pytest.raises(InvalidParameterError, match=r"pip install 'promptxray\[ray\]'"):
        run_evaluation(
            data,
            tmp_path / "x",
            EvalConfig(methods=["grad_norm"]),
            lm=lambda: loads.append(1),
            show_progress=False,
            ray=RayOptions(),
        )
    assert loads == []


def test_cli_ray_flag_is_one_line_exit_2(no_ray, tmp_path, monkeypatch):
    monkeypatch.setattr(
        "promptxray.cli.common.load_lm", lambda *a, **k: pytest.fail("loaded a model")
    )
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "Hello"}\n')
    result = CliRunner().invoke(
        cli_module.app, ["evaluate", "--data", str(data), "--out", str(tmp_path / "o"), "--ray"]
    )
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()  # one line, however the CLI names the flag
    assert line.startswith("error: ") and "Ray is not installed" in line
    assert "pip install 'promptxray[ray]'" in line
