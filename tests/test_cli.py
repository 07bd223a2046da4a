"""The command line: help, outputs (view, JSON, HTML, heatmap) and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest
from cli_helpers import assert_user_error, serve_model
from typer.testing import CliRunner

from promptxray import Attribution, explain
from promptxray.cli import app
from promptxray.methods import REGISTRY

runner = CliRunner()


@pytest.fixture
def loads(monkeypatch, tiny_lm) -> list:
    """Serve the tiny model instead of loading one; the list records each load request."""
    return serve_model(monkeypatch, tiny_lm)


@pytest.mark.parametrize(
    "command",
    [[], ["explain"], ["heatmap"], ["methods"], ["provision"], ["serve"], ["evaluate"], ["study"]],
)
def test_help_works_for_every_command(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_help_describes_the_options():
    text = runner.invoke(app, ["explain", "--help"], env={"COLUMNS": "200"}).stdout
    for option in ("--target", "--span", "--method", "--granularity", "--json", "--html"):
        assert option in text
    assert "'-' reads it from stdin" in text


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["explain", ""], "The prompt is empty"),
        (["explain", "   "], "The prompt is empty"),
        (["explain", "hi", "--method", "bogus"], "Unknown method 'bogus'"),
        (["explain", "hi", "--granularity", "bogus"], "Unknown granularity 'bogus'"),
        (["explain", "hi", "--granularity", "regex"], "needs a pattern"),
        (["explain", "hi", "--target", ""], "target text is empty"),
        (["explain", "hi", "--span", "abc"], "A span is START:END"),
        (["explain", "hi", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
        (["explain", "hi", "--top", "-1"], "--top must be at least 0"),
        (["explain", "hi", "--json", "-", "--html", "-"], "Only one of --json and --html"),
        (["explain", "@/nonexistent/prompt.txt"], "Prompt file not found"),
        (["heatmap", "hi", "--out", "heat.txt"], "--out must end in one of"),
        (["heatmap", "hi", "--out", "/nonexistent/dir/heat.png"], "folder for --out"),
        (["heatmap", "hi", "--out", "h.png", "--method", "bogus"], "Unknown method"),
        (["explain", "hi", "--k", "3"], "grad_norm takes no parameter 'k'; it takes: batch_size"),
        (["explain", "hi", "--param", "bogus=1"], "takes no parameter 'bogus'"),
        (["explain", "hi", "--param", "nonsense"], "--param takes NAME=VALUE"),
        (["explain", "hi", "-m", "integrated_gradients", "--steps", "0"], "steps"),
        (["explain", "hi", "-m", "leave_one_out", "--masking", "blur"], "delete, replace, zero"),
        (["heatmap", "hi", "--out", "h.png", "--iterations", "5"], "no parameter 'iterations'"),
    ],
)
def test_bad_input_fails_in_one_line_before_loading_a_model(loads, args, fragment):
    assert_user_error(runner.invoke(app, args), fragment)
    assert loads == []  # validated before any model was loaded


def test_missing_model_path_fails_cleanly():
    result = runner.invoke(app, ["explain", "hi", "--model", "./nope"])
    assert_user_error(result, "Model path does not exist: ./nope")


def test_span_outside_the_output_fails_cleanly(loads):
    result = runner.invoke(app, ["explain", "hi", "--span", "500:600", "--max-new-tokens", "3"])
    assert_user_error(result, "Span 500:600 is outside the output")
    assert loads == [None]


def test_explain_prints_the_view_and_writes_json_that_reads_back(loads, tiny_lm, tmp_path):
    out = tmp_path / "a.json"
    page = tmp_path / "a.html"
    prompt = "Name [bold]three[/bold] colours."
    result = runner.invoke(
        app,
        ["explain", prompt, "--max-new-tokens", "4", "--json", str(out), "--html", str(page)],
    )
    assert result.exit_code == 0, result.output
    assert prompt in result.stdout  # rich markup in the prompt is printed, not applied
    assert "Top 3 units" in result.stdout and "grad_norm" in result.stdout
    saved = Attribution.from_json(out.read_text(encoding="utf-8"))
    assert Attribution.from_json(saved.to_json()) == saved
    direct = explain(prompt, model=tiny_lm, max_new_tokens=4)
    assert saved.output == direct.output
    assert [u.text for u in saved.units] == ["Name", "[bold]three[/bold]", "colours."]
    assert saved.scores == pytest.approx(direct.scores, rel=1e-5)
    assert saved.metadata["params"] == {"batch_size": 16}  # grad_norm's own, nothing else
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "[bold]three[/bold]" in text


def test_json_to_stdout_is_only_json(loads):
    result = runner.invoke(
        app,
        ["explain", "Say hi.", "--max-new-tokens", "3", "--json", "-", "--granularity", "token"],
    )
    assert result.exit_code == 0, result.output
    attr = Attribution.from_dict(json.loads(result.stdout))
    assert attr.granularity == "token" and len(attr.target_tokens) == 3


def test_prompt_from_stdin_and_from_a_file(loads, tmp_path):
    from_stdin = runner.invoke(
        app, ["explain", "-", "--max-new-tokens", "2", "--json", "-"], input="Tell me\nmore.\n"
    )
    assert json.loads(from_stdin.stdout)["prompt"] == "Tell me\nmore."
    file = tmp_path / "p.txt"
    file.write_text("From a file.\n", encoding="utf-8")
    from_file = runner.invoke(app, ["explain", f"@{file}", "--max-new-tokens", "2", "--json", "-"])
    assert json.loads(from_file.stdout)["prompt"] == "From a file."
    literal = runner.invoke(app, ["explain", "@@home", "--max-new-tokens", "2", "--json", "-"])
    assert json.loads(literal.stdout)["prompt"] == "@home"


def test_explain_a_given_target_and_a_span_of_it(loads):
    result = runner.invoke(
        app,
        [
            "explain",
            "Greet me.",
            "--target",
            "Hello there, friend",
            "--span",
            "6:11",
            "--json",
            "-",
        ],
    )
    assert result.exit_code == 0, result.output
    attr = Attribution.from_dict(json.loads(result.stdout))
    assert attr.output == "Hello there, friend"
    assert attr.target == " there"  # the whole token holding characters 6:11
    assert {u.role for u in attr.units} == {"user", "output"}  # "Hello" is a source now


def test_heatmap_writes_a_png_of_target_rows_by_unit_columns(loads, tiny_lm, tmp_path):
    out = tmp_path / "heat.png"
    result = runner.invoke(
        app, ["heatmap", "Write a poem about the sea.", "--out", str(out), "--max-new-tokens", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "5 target tokens x 6 word units" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(out).ndim == 3


def test_methods_lists_every_method_in_two_lines_at_80_columns():
    result = runner.invoke(app, ["methods"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name, spec in REGISTRY.items():
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [name])
        assert lines[at].split()[1] == str(spec.family)
        assert ("unsigned" in lines[at]) is not spec.signed
        summary = lines[at + 1]
        assert summary.startswith("    ") and spec.description.startswith(summary.strip()[:20])
    assert "masked units only" in result.stdout and "groups by norm" in result.stdout


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_methods_name_shows_every_parameter_at_80_columns(name):
    result = runner.invoke(app, ["methods", name], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].startswith(f"{name} ({REGISTRY[name].family}; ")
    for info in REGISTRY[name].param_info():
        assert any(line.strip().startswith(info.summary()) for line in lines), info.name
    assert " ".join(result.stdout.split()).count(" ".join(REGISTRY[name].description.split()))


def test_methods_name_gives_defaults_ranges_and_flags():
    text = runner.invoke(app, ["methods", "xprompt"], env={"COLUMNS": "80"}).stdout
    assert "  k=3 (int in [1, 1000])  --k\n      Size of the unit set masked jointly." in text
    assert "budget=None (int | None in [2, 1e+06])  --param budget=VALUE" in text
    assert "masking='delete' (choice one of delete/replace/zero)  --masking" in text
    ig = runner.invoke(app, ["methods", "integrated_gradients"], env={"COLUMNS": "80"}).stdout
    assert "steps=20 (int in [1, 1024])  --steps" in ig


def test_methods_with_an_unknown_name_is_one_line():
    result = runner.invoke(app, ["methods", "bogus"], env={"COLUMNS": "80"})
    names = ", ".join(sorted(REGISTRY))
    assert_user_error(result, f"Unknown method 'bogus'; choose one of {names}.")


def test_param_reaches_any_declared_parameter(loads):
    result = runner.invoke(
        app,
        ["explain", "Name three colours.", "-m", "xprompt", "-g", "token", "--max-new-tokens", "3"]
        + ["--k", "2", "--param", "budget=12", "-p", "seed=1", "--json", "-"],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["record"]
    params = record["provenance"]["params"]
    assert params["k"] == 2 and params["budget"] == 12 and params["seed"] == 1
    assert record["search"]["spent"] <= 12


def test_provision_prints_the_model_folder(monkeypatch, tmp_path):
    monkeypatch.setattr("promptxray.api.provision_default_model", lambda progress=None: tmp_path)
    result = runner.invoke(app, ["provision"])
    assert result.exit_code == 0
    assert result.stdout.strip() == str(tmp_path)


@pytest.mark.integration
def test_heatmap_with_the_real_model(monkeypatch, default_lm, tmp_path):
    serve_model(monkeypatch, default_lm)
    out = Path(tmp_path) / "tmp.png"
    result = runner.invoke(
        app,
        [
            "heatmap",
            "Write a six-word story about love",
            "--granularity",
            "word",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.exists() and out.stat().st_size > 10_000
    assert "x 6 word units" in result.stdout


def test_method_summaries_cut_outside_brackets_only():
    from promptxray.cli.methods import first_clause

    assert first_clause("Gradient times input (signed; groups sum).") == (
        "Gradient times input (signed; groups sum)"
    )
    assert first_clause("The k units: a search; more") == "The k units"
    assert first_clause("No separator at all.") == "No separator at all"
