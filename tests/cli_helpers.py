"""What the command-line tests share (a plain module, not a test module)."""

from __future__ import annotations

from typing import Any

import pytest


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
