"""The commands README.md shows still work: a renamed or removed flag fails here.

Every `$P ...` / `promptxray ...` line of the README's ```bash blocks runs against the
current app with the library calls replaced by recorders (so `serve`, `evaluate`, Ray
and the long ones cost nothing), and must end with exit code 0. The few that take
seconds offline run for real with the default model, as a reader would type them.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from cli_helpers import record_library_calls
from typer.testing import CliRunner

from promptxray import Attribution
from promptxray.cli import app
from promptxray.methods import REGISTRY

README = Path(__file__).resolve().parents[1] / "README.md"
PROGRAMS = ("$P", "promptxray", ".venv/bin/promptxray")

# The files the commands name, written into the folder they run in.
FILES = {
    "prompt.txt": "Answer in one word: What color is grass?\n",
    "chat.json": json.dumps(
        [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What color is the sky?"},
            {"role": "assistant", "content": "Blue."},
        ]
    ),
    "prompts.jsonl": '{"prompt": "Answer in one word: What color is the sky?"}\n',
}

# README lines (as they start after the program name) that run for real: offline and in
# seconds with the default model (short prompts; given targets or short answers).
REAL = [
    "methods",
    "methods xprompt",
    'explain "Answer in one word: What color is the sky?"',
    'explain "Translate to French: the cat" --target " le chat" --method leave_one_out',
    "explain @prompt.txt --json out.json --html out.html",
    "explain --messages chat.json --granularity turn",
    'explain "Answer in one word: What color is the sky?" --target " Blue" --contrast " Red"',
]


def readme_commands() -> list[list[str]]:
    """The arguments of every command line in the README's bash blocks, in order, once."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    commands: list[list[str]] = []
    for line in "\n".join(blocks).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] in PROGRAMS and words[1:] not in commands:
            commands.append(words[1:])
    return commands


COMMANDS = readme_commands()


def _id(args: list[str]) -> str:
    return shlex.join(args)[:60]


@pytest.fixture
def in_a_folder_with_the_files(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_the_readme_shows_commands_of_every_kind():
    shown = {args[0] for args in COMMANDS}
    assert {"explain", "heatmap", "serve", "evaluate", "study", "methods"} <= shown
    assert len(COMMANDS) >= 12


@pytest.mark.parametrize("args", COMMANDS, ids=_id)
def test_a_readme_command_runs_against_the_current_app(
    args, in_a_folder_with_the_files, monkeypatch
):
    calls = record_library_calls(monkeypatch)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"promptxray {shlex.join(args)}\n{result.output}"
    if args[0] not in ("methods", "provision"):
        assert calls, "the command reached no library call"


def _real(start: str) -> list[str]:
    matches = [
        args for args in COMMANDS if shlex.join(args).startswith(shlex.join(shlex.split(start)))
    ]
    assert matches, f"README no longer shows `promptxray {start}`: update REAL"
    return matches[0]


@pytest.mark.parametrize("start", REAL[:2])
def test_readme_methods_commands_for_real(start):
    result = CliRunner().invoke(app, _real(start), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    names = [start.split()[1]] if " " in start else list(REGISTRY)
    assert all(name in result.stdout for name in names)


@pytest.mark.integration
@pytest.mark.parametrize("start", REAL[2:])
def test_readme_explain_commands_for_real(start, in_a_folder_with_the_files):
    args = _real(start)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "model: SmolLM2-135M-Instruct" in result.stderr
    if "--json" in args:
        saved = Attribution.from_json((in_a_folder_with_the_files / "out.json").read_text())
        assert saved.prompt == FILES["prompt.txt"].strip()
        assert (in_a_folder_with_the_files / "out.html").read_text().startswith("<!doctype html>")
    else:
        assert "Top" in result.stdout
    if "--contrast" in args:
        assert " Red" in result.stdout
