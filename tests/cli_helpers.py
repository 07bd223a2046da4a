"""What the command-line tests share (a plain module, not a test module)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import promptxray.evaluation
import promptxray.render
import promptxray.render.heatmap
import promptxray.server
import promptxray.study
from promptxray import api

FAKE_JSON = '{"fake": "attribution"}'
FAKE_HTML = "<!doctype html><p>fake</p>"


def serve_model(monkeypatch: pytest.MonkeyPatch, lm: Any) -> list:
    """Make every command load `lm` instead of a model; the list records each request."""
    calls: list = []

    def fake_load(name, progress=None, **placement):
        calls.append(name)
        return lm

    monkeypatch.setattr("promptxray.cli.common.load_lm", fake_load)
    return calls


def assert_user_error(result: Any, fragment: str) -> None:
    """Exit code 2, exactly one `error:` line on stderr, no traceback anywhere."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


class FakeLM:
    name = "fake-lm"
    placement_note = "nowhere"


class FakeAttribution:
    row_tokens: list = []
    units: list = []
    contrast = None
    granularity = "word"

    def to_json(self, indent: int | None = None) -> str:
        return FAKE_JSON


def record_library_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Replace every library entry point the CLI calls with a recorder that answers with a
    stand-in; the list gets (function name, its arguments bound to the real signature).

    Loaders handed over (`model=` of `explain`, `lm=` of `run_evaluation`, `loaders=` of
    `run_study`) are called, so `load_model` is recorded with the placement they carry.
    """
    recorded: list[tuple[str, dict[str, Any]]] = []

    def record(owner: Any, attr: str, result: Callable[[dict[str, Any]], Any]) -> None:
        signature = inspect.signature(getattr(owner, attr))

        def fake(*args: Any, **kwargs: Any) -> Any:
            arguments = dict(signature.bind(*args, **kwargs).arguments)
            recorded.append((attr, arguments))
            return result(arguments)

        monkeypatch.setattr(owner, attr, fake)

    def explained(arguments: dict[str, Any]) -> FakeAttribution:
        if callable(arguments.get("model")):
            arguments["model"]()
        return FakeAttribution()

    def evaluated(arguments: dict[str, Any]) -> Any:
        if callable(arguments.get("lm")):
            arguments["lm"]()
        table = SimpleNamespace(rich=lambda: "TABLE", n=1)
        return SimpleNamespace(
            table=table, prompts=1, computed=1, reused=0, bad_lines=[], errors=[], files=[]
        )

    def studied(arguments: dict[str, Any]) -> Any:
        for load in (arguments.get("loaders") or {}).values():
            load()
        return SimpleNamespace(
            rows=[1], computed=1, reused=0, errors=[], bad_lines=[], files=[], results=[1]
        )

    record(api, "explain", explained)
    record(api, "retarget", lambda arguments: FakeAttribution())
    record(api, "load_model", lambda arguments: FakeLM())
    record(api, "provision_default_model", lambda arguments: Path("/cache/model"))
    record(promptxray.evaluation, "run_evaluation", evaluated)
    record(promptxray.study, "run_study", studied)
    record(promptxray.server, "serve", lambda arguments: None)
    record(promptxray.server, "check_port", lambda arguments: None)
    record(promptxray.server, "check_data_dir", lambda arguments: None)
    record(promptxray.render, "render_console", lambda arguments: "VIEW")
    record(promptxray.render, "render_html", lambda arguments: FAKE_HTML)
    record(promptxray.render.heatmap, "save_heatmap", lambda arguments: Path("h.png"))
    record(promptxray.render.heatmap, "heatmap_layout", lambda a: SimpleNamespace(notes=[]))
    return recorded
