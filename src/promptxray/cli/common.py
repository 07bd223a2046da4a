"""What every command shares: one-line errors, loading a model, reading input, writing output.

Conventions for every command (new ones included):
- read a PROMPT argument with `read_prompt` (`-` is stdin, `@file.txt` a file), or
  a conversation with `--messages FILE.json` (`read_messages`; checked by the library);
- load models with `load_lm` (tests replace it with a tiny model);
- run the body inside `with user_errors("NAME"):` so a `PromptXrayError` ends as one line
  `error: <message>` on stderr with exit code 2, never a traceback;
- write progress to stderr (`err_console()`), so stdout can be piped.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
import typer.main
from rich.console import Console
from rich.text import Text

from .. import api
from ..errors import InvalidParameterError, PromptXrayError

EXIT_USER_ERROR = 2

# ----- errors -----------------------------------------------------------------------------------


def err_console() -> Console:
    """Progress and notes go to stderr; made per call so test runners can capture it."""
    return Console(stderr=True)


def fail(message: str) -> NoReturn:
    """End the command with one readable line and exit code 2."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


@functools.cache
def command_params(command: str) -> tuple[Any, ...]:
    """The options and arguments of `command` as typer built them from the app."""
    from . import app  # the package is fully imported by the time a command runs

    return tuple(typer.main.get_command(app).commands[command].params)  # type: ignore[attr-defined]


def flag_for(command: str, param: str) -> str | None:
    """How `command` spells the library parameter `param`: its option (`--k`), its
    argument (`PROMPT`), or `--param NAME=VALUE` for a method parameter without a flag.

    Read from the command typer built, so a renamed flag is named as it is now.
    """
    params = command_params(command)
    for p in params:
        if p.name == param:
            if p.param_type_name == "option":
                return max(p.opts, key=len)
            return p.metavar or p.name.upper()
    if any(p.name == "param" for p in params):
        return f"--param {param}=VALUE"
    return None


def in_callers_words(exc: PromptXrayError, command: str) -> str:
    """The library's message, with the command's flag for the parameter at fault appended
    (`k (9) is more than the prompt's 4 units. [--k]`) unless the message names it already."""
    message = str(exc)
    flag = flag_for(command, exc.param) if exc.param is not None else None
    if flag is None or flag.split()[0] in message:
        return message
    return f"{message} [{flag}]"


@contextmanager
def user_errors(command: str) -> Iterator[None]:
    """Turn input errors (bad prompt, flag, path) of `command` into `error: ...` instead of a
    traceback, naming the command's flag for the library parameter at fault."""
    try:
        yield
    except PromptXrayError as exc:
        fail(in_callers_words(exc, command))


def check_at_least(flag: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise InvalidParameterError(f"{flag} must be at least {minimum}; got {value}.")


# ----- the model ----------------------------------------------------------------------------------


def load_lm(
    model_name: str | None,
    progress: Callable[[str], None] | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> api.LanguageModel:
    """Load the model a command asked for and say where it runs (tests monkeypatch this
    with a tiny model)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our spinner already says what is happening
    lm = api.load_model(model_name, device=device, dtype=dtype, progress=progress)
    err_console().print(Text(f"model: {lm.name} on {lm.placement_note}", style="dim"))
    return lm


def batch_loader(
    ray: api.RayOptions | None, device: str, dtype: str
) -> Callable[[str | None], api.LanguageModel]:
    """How `evaluate` and `study` load a model by name, after checking the placement.

    Ray workers load it themselves, quietly and where `auto` may find a GPU, so they
    get the plain `load_model` (picklable); one process loads here and says where.
    """
    api.resolve_placement(device, dtype)  # an unusable device fails before anything runs
    if ray is not None:
        return functools.partial(api.load_model, device=device, dtype=dtype)
    return functools.partial(load_lm, device=device, dtype=dtype)


# ----- input --------------------------------------------------------------------------------------


def read_prompt(value: str, what: str = "Prompt") -> str:
    """The prompt argument: literal text, `-` for stdin, `@path` for a file (`@@x` is "@x").

    Text read from stdin or a file loses its trailing newlines, which editors and
    `echo` add without the user meaning them as part of the prompt.
    """
    if value == "-":
        return sys.stdin.read().rstrip("\r\n")
    if value.startswith("@@"):
        return value[1:]
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except FileNotFoundError as exc:
            raise InvalidParameterError(f"{what} file not found: {path}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidParameterError(f"Cannot read {what.lower()} file {path}: {exc}") from exc
    return value


def read_messages(value: str) -> Any:
    """The JSON a `--messages` option names (`-` is stdin), parsed but not yet checked:
    the library checks it where the API and the page do too."""
    path = value.removeprefix("@")  # `@FILE` as --target takes it works too
    where = "stdin" if path == "-" else path
    text = read_prompt(path if path == "-" else "@" + path, "Messages")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameterError(
            f"--messages {where} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc


def read_source(
    prompt: str | None, system_prompt: str | None, messages: str | None
) -> dict[str, Any]:
    """The prompt or the conversation a command explains, as `api.explain` keywords.

    Both given (or neither) is refused before either is read, so `-` is never read twice.
    """
    api.require_one_source(prompt is not None, bool(system_prompt), messages is not None)
    if messages is not None:
        return {"messages": read_messages(messages)}
    assert prompt is not None
    return {"prompt": read_prompt(prompt), "system_prompt": system_prompt or None}


def parse_list(text: str, what: str, example: str) -> list[str]:
    """A comma-separated option ('a, b,a') as names in order, repeats dropped: ['a', 'b'];
    none at all is refused with `example` ("--methods random,grad_norm")."""
    names = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if not names:
        raise InvalidParameterError(f"Give at least one {what}, e.g. {example}.")
    return names


def method_params(params: list[str] | None = None, **options: Any) -> dict[str, Any]:
    """The parameters the user gave: explicit options that were set, then --param pairs.

    Options left unset are not sent, so a method gets its own defaults and a
    parameter it does not take is reported instead of silently dropped.
    """
    out = {name: value for name, value in options.items() if value is not None}
    for item in params or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InvalidParameterError(f"--param takes NAME=VALUE; got {item!r}.")
        out[name.strip()] = value.strip()
    return out


# ----- output -------------------------------------------------------------------------------------


def check_result_outputs(top: int, json_path: str | None, html_path: str | None) -> None:
    """The result-output options checked before any work: at most one of them on stdout."""
    check_at_least("--top", top, 0)
    if json_path == "-" and html_path == "-":
        raise InvalidParameterError("Only one of --json and --html can write to stdout (-).")


def show_result(attr: Any, top: int, json_path: str | None, html_path: str | None) -> None:
    """Draw one result as every result-yielding command does: the console view unless
    stdout carries a file, then the JSON and HTML files asked for."""
    from .. import render

    if "-" not in (json_path, html_path):
        Console().print(render.render_console(attr, top=top))
    if json_path is not None:
        write_output(json_path, attr.to_json(indent=2), "JSON")
    if html_path is not None:
        write_output(html_path, render.render_html(attr, standalone=True, top=top), "HTML")


def write_output(path: str, text: str, what: str) -> None:
    """Write `text` to a file, or to stdout for `-`."""
    if path == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        Path(path).expanduser().write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidParameterError(f"Cannot write {what} to {path}: {exc.strerror}") from exc
    err_console().print(Text(f"wrote {what} to {path}", style="dim"))
