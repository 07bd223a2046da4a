"""Every option of every command reaches the library call it is meant for.

The commands and their options are read from the typer app, so a new option is tested
as soon as it exists: it needs a row in `VALUES` (a non-default value and where it must
arrive), or this test fails and says so. The library entry points the CLI calls are
replaced by recorders; each case runs one command with one option set to a value other
than its default and looks for that value among the recorded calls' arguments (by the
library's parameter name, inside configs, option objects and parameter dicts too).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from cli_helpers import FAKE_HTML, FAKE_JSON, record_library_calls
from typer.testing import CliRunner

import promptxray.server
import promptxray.study
from promptxray import api
from promptxray.cli import app

runner = CliRunner()

MESSAGES = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


def _is_ray_options(value: Any) -> bool:
    return isinstance(value, api.RayOptions)


@dataclasses.dataclass
class Case:
    """One option's test: the value typed, where it must arrive, what else it needs."""

    value: Any  # what is typed (a list for a repeatable option; True/False for a flag)
    arrives: list[tuple[str, Any]] = dataclasses.field(default_factory=list)
    # (library parameter name, value or predicate) that some recorded call must hold
    extra: list[str] = dataclasses.field(default_factory=list)  # more arguments it needs
    drop: list[str] = dataclasses.field(default_factory=list)  # base options it replaces
    check: Callable[[Any, Path], bool] | None = None  # (result, tmp) for what is no call


def _written(name: str, text: str) -> Callable[[Any, Path], bool]:
    return lambda result, tmp: (tmp / name).read_text(encoding="utf-8").strip() == text


# What each command needs to run at all (option name -> value), before the one under test.
BASE: dict[str, dict[str, Any]] = {
    "explain": {"prompt": "Say hello."},
    "heatmap": {"prompt": "Say hello.", "out": "{tmp}/h.png"},
    "methods": {},
    "provision": {},
    "serve": {},
    "evaluate": {"data": "{tmp}/data.jsonl", "out_dir": "{tmp}/run"},
    "study": {"data": "{tmp}/data.jsonl", "out_dir": "{tmp}/study"},
    "": {},  # the app itself (--version)
    "retarget": {"result": "{tmp}/r.json", "span": "0:2"},
}

RAY = ["--ray"]

# option name -> its case; "command.option" overrides it for one command.
VALUES: dict[str, Case] = {
    "version": Case(True, check=lambda r, tmp: r.stdout.startswith("promptxray ")),
    "prompt": Case("Why is the sea blue?", [("prompt", "Why is the sea blue?")]),
    "messages": Case("{tmp}/chat.json", [("messages", MESSAGES)], drop=["prompt"]),
    "target": Case("Blue.", [("target", "Blue.")]),
    "contrast": Case("Red.", [("contrast", "Red.")]),
    "span": Case("0:4", [("span", (0, 4))]),
    "method": Case("leave_one_out", [("method", "leave_one_out")]),
    "granularity": Case("sentence", [("granularity", "sentence")]),
    "pattern": Case(r"\w+", [("pattern", r"\w+")]),
    "system_prompt": Case("Be brief.", [("system_prompt", "Be brief.")]),
    "max_new_tokens": Case(7, [("max_new_tokens", 7)]),
    "model": Case("some/model", [("name_or_path", "some/model")]),
    "device": Case("cpu", [("device", "cpu")]),
    "dtype": Case("float32", [("dtype", "float32")]),
    "top": Case(3, [("top", 3)]),
    "k": Case(2, [("k", 2)]),
    "check": Case(False, [("check", False)]),
    "check_k": Case(2, [("check_k", 2)]),
    "iterations": Case(5, [("iterations", 5)]),
    "steps": Case(6, [("steps", 6)]),
    "masking": Case("zero", [("masking", "zero")]),
    "param": Case(["budget=12", "seed=1"], [("budget", "12"), ("seed", "1")]),
    "json_path": Case("{tmp}/a.json", check=_written("a.json", FAKE_JSON)),
    "html_path": Case("{tmp}/a.html", [("standalone", True)], check=_written("a.html", FAKE_HTML)),
    "heatmap.out": Case("{tmp}/other.svg", [("path", "{tmp}/other.svg")]),
    "rows": Case("word", [("rows", "word")]),
    "name": Case("xprompt", check=lambda r, tmp: r.stdout.startswith("xprompt (joint; ")),
    "port": Case(8123, [("port", 8123)]),
    "host": Case("0.0.0.0", [("host", "0.0.0.0")]),
    "data_dir": Case("{tmp}/history", [("data_dir", "{tmp}/history")]),
    "allowed_hosts": Case(["proxy.local"], [("allowed_hosts", ["proxy.local"])]),
    "token": Case("s3cret", [("token", "s3cret")]),
    "data": Case("{tmp}/other.jsonl", [("data", "{tmp}/other.jsonl")]),
    "out_dir": Case("{tmp}/elsewhere", [("out_dir", "{tmp}/elsewhere")]),
    "methods": Case("random,grad_norm", [("methods", ["random", "grad_norm"])]),
    "evaluate.masking": Case("zero", [("masking", "zero")]),
    "limit": Case(5, [("limit", 5)]),
    "seed": Case(3, [("seed", 3)]),
    "use_sbert": Case(False, [("use_sbert", False)]),
    "models": Case("m1,m2", [("models", ["m1", "m2"]), ("name_or_path", "m2")]),
    "ray": Case(True, [("ray", _is_ray_options)]),
    "address": Case("ray://head:10001", [("address", "ray://head:10001")]),
    "workers": Case(3, [("workers", 3)], extra=RAY),
    "cpus_per_worker": Case(2.0, [("cpus_per_worker", 2.0)], extra=RAY),
    "gpus_per_worker": Case(0.5, [("gpus_per_worker", 0.5)], extra=RAY),
    "result": Case("{tmp}/other.json", [("result", "{tmp}/other.json")]),
}


def _options() -> Iterator[tuple[str, Any]]:
    """(command name, click parameter) for every parameter of every command, and the app's."""
    group = typer.main.get_command(app)
    for param in group.params:
        yield "", param
    for name, command in group.commands.items():
        for param in command.params:
            yield name, param


OPTIONS = list(_options())


# ----- recording the library calls -----------------------------------------------------------


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, dict[str, Any]]]:
    return record_library_calls(monkeypatch)


def _leaves(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    """(name, value) for an argument and everything named inside it."""
    yield name, value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _leaves(field.name, getattr(value, field.name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(str(key), item)


# ----- building the command line ---------------------------------------------------------------


def _case(command: str, param: Any) -> Case:
    case = VALUES.get(f"{command}.{param.name}") or VALUES.get(param.name)
    if case is None:
        flag = max(param.opts, key=len)
        pytest.fail(
            f"`promptxray {command}` has {flag} but tests/test_cli_options.py has no value for "
            f"it: add {param.name!r} to VALUES with a non-default value and where it arrives."
        )
    return case


def _fill(value: Any, tmp: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp))
    if isinstance(value, list):
        return [_fill(v, tmp) for v in value]
    return value


def _words(param: Any, value: Any) -> list[str]:
    """How `param` = `value` is typed: an argument, `--flag`, `--no-flag`, `--opt V` (repeated)."""
    if param.param_type_name == "argument":
        return [str(value)]
    if param.is_flag:
        return [param.opts[0]] if value else [param.secondary_opts[0]]
    values = value if isinstance(value, list) else [value]
    return [word for v in values for word in (max(param.opts, key=len), str(v))]


def _argv(command: str, param: Any, case: Case, tmp: Path) -> list[str]:
    by_name = {p.name: p for c, p in OPTIONS if c == command}
    chosen = {k: v for k, v in BASE[command].items() if k not in case.drop}
    chosen[param.name] = case.value
    words = [command] if command else []
    for name, value in chosen.items():
        words += _words(by_name[name], _fill(value, tmp))
    return words + case.extra


def _matches(expected: Any, actual: Any, tmp: Path) -> bool:
    if callable(expected):
        return bool(expected(actual))
    expected = _fill(expected, tmp)
    if isinstance(actual, Path) and isinstance(expected, str):
        return actual == Path(expected)
    return type(actual) is type(expected) and actual == expected


# ----- the test ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "param"), OPTIONS, ids=[f"{c or 'app'} {p.name}" for c, p in OPTIONS]
)
def test_every_option_reaches_the_library(command, param, calls, tmp_path):
    case = _case(command, param)
    assert str(case.value) != str(param.default), f"{param.name}: use a non-default value"
    (tmp_path / "chat.json").write_text(json.dumps(MESSAGES), encoding="utf-8")
    for name in ("data.jsonl", "other.jsonl"):
        (tmp_path / name).write_text('{"prompt": "Say hello."}\n', encoding="utf-8")
    result = runner.invoke(app, _argv(command, param, case, tmp_path))
    assert result.exit_code == 0, result.output
    leaves = [
        leaf
        for function, arguments in calls
        for item in arguments.items()
        for leaf in _leaves(*item)
    ]
    for name, expected in case.arrives:
        found = [value for leaf, value in leaves if leaf == name]
        assert any(_matches(expected, value, tmp_path) for value in found), (
            f"{command} {param.name}={case.value!r} never reached the library as {name}; "
            f"{name} arrived as {found!r} in {[function for function, _ in calls]}"
        )
    if case.check is not None:
        assert case.check(result, tmp_path), result.output
    assert case.arrives or case.check, f"{param.name}: say where the value must arrive"


def test_the_option_table_has_no_stale_rows():
    names = {p.name for _, p in OPTIONS} | {f"{c}.{p.name}" for c, p in OPTIONS}
    assert set(VALUES) <= names, set(VALUES) - names


def test_a_library_error_names_the_flag_of_its_parameter(monkeypatch, tmp_path):
    from promptxray.errors import InvalidParameterError

    def refuse(param: str) -> Callable[..., Any]:
        def raise_it(*args: Any, **kwargs: Any) -> Any:
            raise InvalidParameterError(f"{param} is wrong here.", param=param)

        return raise_it

    monkeypatch.setattr(api, "explain", refuse("k"))
    result = runner.invoke(app, ["explain", "Hi"])
    assert result.exit_code == 2 and result.stderr == "error: k is wrong here. [--k]\n"
    monkeypatch.setattr(api, "explain", refuse("budget"))
    result = runner.invoke(app, ["explain", "Hi"])
    assert result.stderr == "error: budget is wrong here. [--param budget=VALUE]\n"
    monkeypatch.setattr(api, "explain", refuse("system_prompt"))
    assert runner.invoke(app, ["explain", "Hi"]).stderr.endswith("[--system]\n")
    monkeypatch.setattr(api, "explain", refuse("prompt"))
    assert runner.invoke(app, ["explain", "Hi"]).stderr.endswith("wrong here. [PROMPT]\n")
    monkeypatch.setattr(promptxray.study, "run_study", refuse("address"))
    args = ["study", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "o")]
    assert runner.invoke(app, args).stderr == "error: address is wrong here. [--ray-address]\n"
    monkeypatch.setattr(promptxray.server, "check_port", refuse("elsewhere"))
    assert runner.invoke(app, ["serve"]).stderr == "error: elsewhere is wrong here.\n"


def test_a_message_that_names_the_flag_already_is_left_alone(monkeypatch):
    from promptxray.errors import InvalidParameterError

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise InvalidParameterError("Use --k 2 or less.", param="k")

    monkeypatch.setattr(api, "explain", refuse)
    assert runner.invoke(app, ["explain", "Hi"]).stderr == "error: Use --k 2 or less.\n"


def test_an_empty_target_is_named_by_its_flag():
    result = runner.invoke(app, ["explain", "Hi", "--target", ""])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: The target text is empty: give the text to explain. [--target]\n"
    )
