"""Command line: `promptxray explain | heatmap | methods | provision` (more commands join here).

The CLI computes nothing itself: it reads the input, calls the same `build_problem`
and `attribute` as the notebook API and draws the result with `promptxray.render`.

Conventions for every command (new ones included):
- read a PROMPT argument with `read_prompt` (`-` is stdin, `@file.txt` a file), or
  a conversation with `--messages FILE.json` (`read_messages`; checked by the library);
- load models with `_load` (tests replace it with a tiny model);
- run the body inside `with user_errors():` so a `PromptXrayError` ends as one line
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
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__
from .api import estimate as estimate_api
from .api import explain as explain_api
from .attribution import Attribution
from .conversation import require_one_source
from .errors import InvalidParameterError, PromptXrayError
from .methods import REGISTRY
from .model import (
    DEFAULT_MODEL,
    LanguageModel,
    load_model,
    provision_default_model,
    resolve_placement,
)
from .segments import GRANULARITIES
from .targets import parse_span

EXIT_USER_ERROR = 2

app = typer.Typer(
    name="promptxray",
    help="See which parts of a prompt drive what a language model writes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


# ----- shared plumbing ---------------------------------------------------------------


def err_console() -> Console:
    """Progress and notes go to stderr; made per call so test runners can capture it."""
    return Console(stderr=True)


def fail(message: str) -> NoReturn:
    """End the command with one readable line and exit code 2."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn input errors (bad prompt, flag, path) into `error: ...` instead of a traceback."""
    try:
        yield
    except PromptXrayError as exc:
        fail(str(exc))


def _load(
    model_name: str | None,
    progress: Callable[[str], None] | None = None,
    device: str | None = None,
    dtype: str | None = None,
) -> LanguageModel:
    """Load the model a command asked for and say where it runs (tests monkeypatch this
    with a tiny model)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our spinner already says what is happening
    lm = load_model(model_name, device=device, dtype=dtype, progress=progress)
    err_console().print(Text(f"model: {lm.name} on {lm.placement_note}", style="dim"))
    return lm


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
    `conversation.check_messages` checks it where the API and the page do too."""
    path = value.removeprefix("@")  # `@FILE` as --target takes it works too
    where = "stdin" if path == "-" else path
    text = read_prompt(path if path == "-" else "@" + path, "Messages")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidParameterError(
            f"--messages {where} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc


def read_source(prompt: str | None, system: str | None, messages: str | None) -> dict[str, Any]:
    """The prompt or the conversation a command explains, as `api.explain` keywords.

    Both given (or neither) is refused before either is read, so `-` is never read twice.
    """
    require_one_source(prompt is not None, bool(system), messages is not None)
    if messages is not None:
        return {"messages": read_messages(messages)}
    assert prompt is not None
    return {"prompt": read_prompt(prompt), "system_prompt": system or None}


def _write(path: str, text: str, what: str) -> None:
    """Write `text` to a file, or to stdout for `-`."""
    if path == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    try:
        Path(path).expanduser().write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidParameterError(f"Cannot write {what} to {path}: {exc.strerror}") from exc
    err_console().print(Text(f"wrote {what} to {path}", style="dim"))


def _check_at_least(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise InvalidParameterError(f"{name} must be at least {minimum}; got {value}.")


def compute(
    source: dict[str, Any],
    *,
    model: str | None,
    method: str,
    granularity: str,
    pattern: str | None,
    target: str | None,
    span: str | None,
    max_new_tokens: int,
    matrix: bool,
    params: dict[str, Any],
    device: str | None = None,
    dtype: str | None = None,
    contrast: str | None = None,
) -> Attribution:
    """`api.explain` with a spinner: the API checks everything before the model loads.

    `source` is what `read_source` gives: a prompt and system prompt, or messages.
    """
    _check_at_least("--max-new-tokens", max_new_tokens, 1)
    resolve_placement(device, dtype)  # an unusable device fails before the spinner starts
    if target is not None and target.startswith("@"):
        target = read_prompt(target, "Target")  # a response saved elsewhere; @@x is "@x"
    if contrast is not None and contrast.startswith("@"):
        contrast = read_prompt(contrast, "Contrast")
    parsed_span = parse_span(span) if span is not None else None
    console = err_console()
    with console.status("Loading the model...") as status:
        generated = 0

        def on_token(_: int) -> None:
            nonlocal generated
            generated += 1
            status.update(f"Generating the output... {generated} tokens")

        def on_stage(stage: str) -> None:
            status.update(
                f"{stage.capitalize()} with {method}..."
                if stage == "explaining"
                else f"{stage.capitalize()} the output..."
            )

        def progress(done: int, total: int) -> None:
            status.update(f"Explaining with {method}... {done}/{total}")

        def before_run(lm: Any, problem: Any, request: Any) -> None:
            status.update(f"Estimating the cost of {method}...")
            announce_estimate(console, estimate_api(lm, problem, request, matrix=matrix))

        return explain_api(
            **source,
            model=lambda: _load(model, progress=status.update, device=device, dtype=dtype),
            method=method,
            target=target,
            contrast=contrast,
            span=parsed_span,
            granularity=granularity,
            pattern=pattern,
            max_new_tokens=max_new_tokens,
            matrix=matrix,
            progress=progress,
            on_token=on_token,
            on_stage=on_stage,
            params=params,
            before_run=before_run,
        )


# Jobs predicted to take longer than this are announced before they start.
ANNOUNCE_SECONDS = 10.0


def announce_estimate(console: Any, estimate: Any) -> None:
    """One dim stderr line before a long job ("leave_one_out: about 327 forward passes,
    ~40 s"), so a user can stop it before waiting; short jobs say nothing."""
    if estimate.seconds > ANNOUNCE_SECONDS:
        console.print(estimate.line(), style="dim", highlight=False, markup=False)


# ----- options shared by commands ---------------------------------------------------------

PromptArg = Annotated[
    str | None,
    typer.Argument(
        help="The prompt text; '-' reads it from stdin, '@file.txt' from a file "
        "(or give a conversation with --messages instead).",
        metavar="PROMPT",
        show_default=False,
    ),
]
MessagesOpt = Annotated[
    str | None,
    typer.Option(
        "--messages",
        metavar="FILE.json",
        help='A conversation instead of PROMPT: a JSON list of {"role": "system"|"user"|'
        '"assistant", "content": ...} (\'-\' reads stdin). Every turn is scored; a final '
        "assistant message is the answer to explain, else the model answers.",
        show_default=False,
    ),
]
MethodOpt = Annotated[
    str,
    typer.Option(
        "--method", "-m", help="Attribution method (see `promptxray methods`).", show_default=True
    ),
]
GranularityOpt = Annotated[
    str,
    typer.Option(
        "--granularity",
        "-g",
        help=f"Units to score: {', '.join(GRANULARITIES)} or regex (with --pattern).",
    ),
]
PatternOpt = Annotated[
    str | None,
    typer.Option(
        "--pattern", metavar="REGEX", help="Regular expression whose matches are the units (regex)."
    ),
]
SystemOpt = Annotated[
    str | None,
    typer.Option("--system", metavar="TEXT", help="A system prompt; its words are scored too."),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        "-t",
        metavar="TEXT",
        help="Explain this text as the model's answer instead of generating one "
        "(@FILE reads it from a file, e.g. a response logged from another model).",
    ),
]
ContrastOpt = Annotated[
    str | None,
    typer.Option(
        "--contrast",
        metavar="TEXT",
        help="Explain why the target rather than this text: scores attribute "
        "log p(target) - log p(TEXT), both from the same context (@FILE reads it).",
    ),
]
SpanOpt = Annotated[
    str | None,
    typer.Option(
        "--span",
        metavar="START:END",
        help="Explain only characters START:END of the output (e.g. 0:40); "
        "earlier output then counts as a source.",
    ),
]
MaxTokensOpt = Annotated[
    int, typer.Option("--max-new-tokens", help="Most tokens to generate for the output.")
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="ID_OR_PATH",
        help=f"Hugging Face id, local folder or .gguf file (default: {DEFAULT_MODEL}).",
        show_default=False,
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the model runs: auto (first GPU, else CPU), cpu, cuda, cuda:N, mps.",
    ),
]
DtypeOpt = Annotated[
    str,
    typer.Option(
        "--dtype",
        help="Number type: auto (bfloat16 on a GPU that has it, else float32), float32, "
        "bfloat16, float16.",
    ),
]
KOpt = Annotated[
    int | None,
    typer.Option(
        "--k", help="Joint methods: size of the unit set (parameter k).", show_default=False
    ),
]
IterationsOpt = Annotated[
    int | None,
    typer.Option("--iterations", help="Parameter iterations (xprompt_paper).", show_default=False),
]
StepsOpt = Annotated[
    int | None,
    typer.Option("--steps", help="integrated_gradients: interpolation steps.", show_default=False),
]
MaskingOpt = Annotated[
    str | None,
    typer.Option(
        "--masking",
        help="Perturbation and joint methods: how a unit is removed (delete, replace, zero).",
        show_default=False,
    ),
]
RayOpt = Annotated[
    bool,
    typer.Option(
        "--ray", help="Run whole prompts on Ray workers (a local Ray unless --ray-address)."
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", metavar="ADDRESS", help="Join this Ray cluster (implies --ray)."),
]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Ray workers (each loads the model).")]
CpusOpt = Annotated[
    float, typer.Option("--cpus-per-worker", help="CPUs (and torch threads) per Ray worker.")
]
GpusOpt = Annotated[float, typer.Option("--gpus-per-worker", help="GPUs per Ray worker.")]


def ray_options(ray: bool, address: str | None, workers: int, cpus: float, gpus: float) -> Any:
    """The Ray settings when --ray or --ray-address was given, else None (one process).

    Whether Ray is installed and the settings make sense is checked where Ray starts
    (`distributed`), before any model loads.
    """
    if not ray and address is None:
        return None
    from .distributed import RayOptions

    return RayOptions(address=address, workers=workers, cpus_per_worker=cpus, gpus_per_worker=gpus)


ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="NAME=VALUE",
        help="Any parameter the method declares (see `promptxray methods`); repeatable.",
        show_default=False,
    ),
]


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


# ----- commands -----------------------------------------------------------------------------


def _version(value: bool) -> None:
    if value:
        typer.echo(f"promptxray {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """See which parts of a prompt drive what a language model writes."""


@app.command()
def explain(
    prompt: PromptArg = None,
    messages: MessagesOpt = None,
    target: TargetOpt = None,
    contrast: ContrastOpt = None,
    span: SpanOpt = None,
    method: MethodOpt = "grad_norm",
    granularity: GranularityOpt = "word",
    pattern: PatternOpt = None,
    system: SystemOpt = None,
    max_new_tokens: MaxTokensOpt = 64,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    top: Annotated[int, typer.Option("--top", help="How many top units to list.")] = 10,
    k: KOpt = None,
    iterations: IterationsOpt = None,
    steps: StepsOpt = None,
    masking: MaskingOpt = None,
    param: ParamOpt = None,
    json_path: Annotated[
        str | None,
        typer.Option(
            "--json", metavar="FILE", help="Also write the result as JSON to FILE ('-' for stdout)."
        ),
    ] = None,
    html_path: Annotated[
        str | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Also write a standalone HTML page to FILE ('-' for stdout).",
        ),
    ] = None,
) -> None:
    """Explain which parts of PROMPT drive the model's output (or --target / --span of it)."""
    with user_errors():
        _check_at_least("--top", top, 0)
        params = method_params(param, k=k, iterations=iterations, steps=steps, masking=masking)
        if json_path == "-" and html_path == "-":
            raise InvalidParameterError("Only one of --json and --html can write to stdout (-).")
        attr = compute(
            read_source(prompt, system, messages),
            model=model,
            method=method,
            granularity=granularity,
            pattern=pattern,
            target=target,
            contrast=contrast,
            span=span,
            max_new_tokens=max_new_tokens,
            matrix=False,
            params=params,
            device=device,
            dtype=dtype,
        )
        if "-" not in (json_path, html_path):
            from .render.console import render_console

            Console().print(render_console(attr, top=top))
        if json_path is not None:
            _write(json_path, attr.to_json(indent=2), "JSON")
        if html_path is not None:
            from .render.html import render_html

            _write(html_path, render_html(attr, standalone=True, top=top), "HTML")


_IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


@app.command()
def heatmap(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help=f"Image file to write ({', '.join(_IMAGE_SUFFIXES)}).",
            show_default=False,
        ),
    ],
    prompt: PromptArg = None,
    messages: MessagesOpt = None,
    method: MethodOpt = "grad_norm",
    granularity: GranularityOpt = "word",
    pattern: PatternOpt = None,
    system: SystemOpt = None,
    target: TargetOpt = None,
    contrast: ContrastOpt = None,
    span: SpanOpt = None,
    max_new_tokens: MaxTokensOpt = 64,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    k: KOpt = None,
    iterations: IterationsOpt = None,
    steps: StepsOpt = None,
    masking: MaskingOpt = None,
    param: ParamOpt = None,
    rows: Annotated[
        str,
        typer.Option(
            "--rows",
            help="Group rows: token, word, sentence, line, or auto (output sentences or "
            "words above 60 tokens; prompt units grow coarser above 80 where the method allows).",
        ),
    ] = "auto",
) -> None:
    """Draw a target-token x prompt-unit heatmap of PROMPT's influence into an image file."""
    with user_errors():
        if out.suffix.lower() not in _IMAGE_SUFFIXES:
            raise InvalidParameterError(
                f"--out must end in one of {', '.join(_IMAGE_SUFFIXES)}; got {str(out)!r}."
            )
        if not out.expanduser().parent.is_dir():
            raise InvalidParameterError(f"The folder for --out does not exist: {out.parent}")
        from .render.heatmap import ROW_CHOICES, heatmap_layout, save_heatmap

        if rows not in ROW_CHOICES:  # before the model loads, not after a long run
            raise InvalidParameterError(f"--rows is one of {', '.join(ROW_CHOICES)}; got {rows!r}.")
        params = method_params(param, k=k, iterations=iterations, steps=steps, masking=masking)
        attr = compute(
            read_source(prompt, system, messages),
            model=model,
            method=method,
            granularity=granularity,
            pattern=pattern,
            target=target,
            contrast=contrast,
            span=span,
            max_new_tokens=max_new_tokens,
            matrix=True,
            params=params,
            device=device,
            dtype=dtype,
        )
        try:
            path = save_heatmap(attr, out.expanduser(), rows=rows)
        except OSError as exc:
            raise InvalidParameterError(f"Cannot write {out}: {exc.strerror}") from exc
        n_rows, n_cols = len(attr.row_tokens), len(attr.units)
        what = "target and contrast tokens" if attr.contrast is not None else "target tokens"
        line = f"wrote {path} ({n_rows} {what} x {n_cols} {attr.granularity} units)"
        layout = heatmap_layout(attr, rows)
        if layout.notes:
            line += "; drawn with " + "; ".join(layout.notes)
        typer.echo(line)


@app.command()
def methods() -> None:
    """List the attribution methods you can pass to --method, with their parameters."""
    table = Table(show_edge=False, show_lines=True)
    table.add_column("method")
    table.add_column("family")
    table.add_column("units")
    table.add_column("description")
    table.add_column("parameters (--param NAME=VALUE)")
    rules = {
        "sum": "tokens; groups sum",
        "norm": "tokens; groups: norm of the group gradient",
        "fixed": "whole units it masks; never regrouped",
    }
    for name in sorted(REGISTRY):
        spec = REGISTRY[name]
        params = Text()
        for n, info in enumerate(spec.param_info()):
            params.append(("\n" if n else "") + info.summary(), style="bold")
            if info.help:
                params.append(f": {info.help}", style="dim")
        table.add_row(
            Text(name, style="bold"),
            Text(str(spec.family)),
            Text(rules[str(spec.aggregation)] + ("; signed" if spec.signed else "; unsigned")),
            Text(spec.description),
            params or Text("none", style="dim"),
        )
    Console().print(table)


@app.command()
def provision() -> None:
    """Unpack the default model into the cache once (later loads take under a second)."""
    with user_errors():
        with err_console().status("Preparing the default model...") as status:
            path = provision_default_model(progress=status.update)
        typer.echo(str(path))


@app.command()
def serve(
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to bind; the default is reachable from this machine only."
        ),
    ] = "127.0.0.1",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            help="Where the run history is kept (default: your user data folder).",
            show_default=False,
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            metavar="NAME",
            help="Another Host name to answer to (a proxy or machine name); repeatable.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Access token every API request must carry (made and printed for you when "
            "--host is not local).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Open the prompt debugger web page: generate, explain, mask and regenerate, history."""
    with user_errors():
        from .server import check_data_dir, check_port, default_data_dir
        from .server import serve as run_server

        # Everything that can fail without the model fails before it loads.
        check_port(host, port)
        check_data_dir(data_dir if data_dir is not None else default_data_dir())
        resolve_placement(device, dtype)
        with err_console().status("Loading the model...") as status:
            lm = _load(model, progress=status.update, device=device, dtype=dtype)
        run_server(
            lm,
            host=host,
            port=port,
            data_dir=data_dir,
            allowed_hosts=allowed_host or (),
            token=token,
        )


@app.command()
def evaluate(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            metavar="FILE",
            help="JSONL file, a row a line: 'prompt' (+ 'system_prompt') or 'messages', "
            "optionally 'target' (a supplied response) and 'id'.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", metavar="DIR", help="Run folder: results.sqlite and table.md/.csv/.json."
        ),
    ],
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated methods to compare.")
    ] = "random,integrated_gradients,leave_one_out,xprompt,grad_norm",
    k: Annotated[int, typer.Option("--k", help="How many top units to mask.")] = 3,
    limit: Annotated[
        int | None, typer.Option("--limit", metavar="N", help="Use only the first N prompts.")
    ] = None,
    granularity: GranularityOpt = "word",
    masking: Annotated[
        str,
        typer.Option("--masking", help="How the top units are removed (delete, replace, zero)."),
    ] = "delete",
    max_new_tokens: MaxTokensOpt = 64,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    iterations: IterationsOpt = None,
    steps: StepsOpt = None,
    param: ParamOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of random and xprompt.")] = 0,
    sbert: Annotated[
        bool, typer.Option("--sbert/--no-sbert", help="Compute the SentenceBERT similarity.")
    ] = True,
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 2,
    cpus_per_worker: CpusOpt = 1.0,
    gpus_per_worker: GpusOpt = 0.0,
) -> None:
    """Measure how faithful each method's top-k units are on a prompt set (resumable)."""
    with user_errors():
        from .evaluation.command import evaluate_command

        resolve_placement(device, dtype)  # an unusable device fails before anything runs
        spread = ray_options(ray, ray_address, workers, cpus_per_worker, gpus_per_worker)
        # Ray workers load the model themselves (where `auto` may find a GPU); one
        # process loads it here.
        loader = (
            functools.partial(load_model, model, device, dtype)
            if spread
            else functools.partial(_load, model, device=device, dtype=dtype)
        )

        evaluate_command(
            data,
            out,
            methods,
            k=k,
            limit=limit,
            granularity=granularity,
            masking=masking,
            max_new_tokens=max_new_tokens,
            model=model,
            lm=loader,
            iterations=iterations,
            steps=steps,
            params=method_params(param),
            seed=seed,
            sbert=sbert,
            ray=spread,
        )


@app.command()
def study(
    data: Annotated[
        Path, typer.Argument(metavar="FILE", help="Study file (JSONL; see docs/studies.md).")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="DIR", help="Folder: study.sqlite, CSVs, report.html."),
    ],
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated models (names, ids or paths).")
    ] = "SmolLM2-135M-Instruct",
    method: Annotated[str, typer.Option("--method", help="Attribution method.")] = "grad_norm",
    granularity: GranularityOpt = "word",
    max_new_tokens: MaxTokensOpt = 24,
    limit: Annotated[
        int | None, typer.Option("--limit", metavar="N", help="Use only the first N rows.")
    ] = None,
    param: ParamOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    ray: RayOpt = False,
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 2,
    cpus_per_worker: CpusOpt = 1.0,
    gpus_per_worker: GpusOpt = 0.0,
) -> None:
    """Compare token importance across tasks, prompt structures and models (resumable)."""
    with user_errors():
        from .study.command import study_command

        resolve_placement(device, dtype)  # an unusable device fails before anything runs
        spread = ray_options(ray, ray_address, workers, cpus_per_worker, gpus_per_worker)

        study_command(
            data,
            out,
            models,
            load=functools.partial(_load, device=device, dtype=dtype),
            method=method,
            granularity=granularity,
            max_new_tokens=max_new_tokens,
            limit=limit,
            params=method_params(param),
            ray=spread,
        )
