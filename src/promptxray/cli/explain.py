"""`promptxray explain` and `promptxray heatmap`: one prompt, one result, drawn.

The commands compute nothing themselves: they read the input, call `api.explain` (the
same call as a notebook) and draw the result with `promptxray.render`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .. import api
from ..attribution import Attribution
from ..errors import InvalidParameterError
from . import common
from .common import (
    check_at_least,
    check_result_outputs,
    err_console,
    method_params,
    read_prompt,
    read_source,
    show_result,
    user_errors,
)
from .options import (
    CheckKOpt,
    CheckOpt,
    ContrastOpt,
    DeviceOpt,
    DtypeOpt,
    GranularityOpt,
    HtmlOutOpt,
    IterationsOpt,
    JsonOutOpt,
    KOpt,
    MaskingOpt,
    MaxTokensOpt,
    MessagesOpt,
    MethodOpt,
    ModelOpt,
    ParamOpt,
    PatternOpt,
    PromptArg,
    SpanOpt,
    StepsOpt,
    SystemOpt,
    TargetOpt,
    TopOpt,
)

# Jobs predicted to take longer than this are announced before they start.
ANNOUNCE_SECONDS = 10.0

IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


def announce_estimate(console: Console, estimate: api.Estimate) -> None:
    """One dim stderr line before a long job ("leave_one_out: about 327 forward passes,
    ~40 s"), so a user can stop it before waiting; short jobs say nothing."""
    if estimate.seconds > ANNOUNCE_SECONDS:
        console.print(estimate.line(), style="dim", highlight=False, markup=False)


def compute(
    source: dict[str, Any],
    *,
    model: str | None,
    method: str,
    granularity: str,
    pattern: str | None,
    target: str | None,
    contrast: str | None,
    span: str | None,
    max_new_tokens: int,
    matrix: bool,
    params: dict[str, Any],
    check: bool = True,
    check_k: int | None = None,
    device: str,
    dtype: str,
) -> Attribution:
    """`api.explain` with a spinner: the API checks everything before the model loads.

    `source` is what `read_source` gives: a prompt and system prompt, or messages.
    """
    check_at_least("--max-new-tokens", max_new_tokens, 1)
    api.resolve_placement(device, dtype)  # an unusable device fails before the spinner starts
    if target is not None and target.startswith("@"):
        target = read_prompt(target, "Target")  # a response saved elsewhere; @@x is "@x"
    if contrast is not None and contrast.startswith("@"):
        contrast = read_prompt(contrast, "Contrast")
    parsed_span = api.parse_span(span) if span is not None else None
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

        def before_run(lm: api.LanguageModel, problem: api.Problem, request: api.Request) -> None:
            status.update(f"Estimating the cost of {method}...")
            announce_estimate(console, api.estimate(lm, problem, request, matrix=matrix))

        return api.explain(
            **source,
            model=lambda: common.load_lm(model, progress=status.update, device=device, dtype=dtype),
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
            check=check,
            check_k=check_k,
        )


def explain(
    prompt: PromptArg = None,
    messages: MessagesOpt = None,
    target: TargetOpt = None,
    contrast: ContrastOpt = None,
    span: SpanOpt = None,
    method: MethodOpt = "grad_norm",
    granularity: GranularityOpt = "word",
    pattern: PatternOpt = None,
    system_prompt: SystemOpt = None,
    max_new_tokens: MaxTokensOpt = 64,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    top: TopOpt = 10,
    k: KOpt = None,
    iterations: IterationsOpt = None,
    steps: StepsOpt = None,
    masking: MaskingOpt = None,
    param: ParamOpt = None,
    check: CheckOpt = True,
    check_k: CheckKOpt = None,
    json_path: JsonOutOpt = None,
    html_path: HtmlOutOpt = None,
) -> None:
    """Explain which parts of PROMPT drive the model's output (or --target / --span of it)."""
    with user_errors("explain"):
        check_result_outputs(top, json_path, html_path)
        params = method_params(param, k=k, iterations=iterations, steps=steps, masking=masking)
        attr = compute(
            read_source(prompt, system_prompt, messages),
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
            check=check,
            check_k=check_k,
            device=device,
            dtype=dtype,
        )
        show_result(attr, top, json_path, html_path)


def heatmap(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help=f"Image file to write ({', '.join(IMAGE_SUFFIXES)}).",
            show_default=False,
        ),
    ],
    prompt: PromptArg = None,
    messages: MessagesOpt = None,
    method: MethodOpt = "grad_norm",
    granularity: GranularityOpt = "word",
    pattern: PatternOpt = None,
    system_prompt: SystemOpt = None,
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
    check: CheckOpt = True,
    check_k: CheckKOpt = None,
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
    with user_errors("heatmap"):
        if out.suffix.lower() not in IMAGE_SUFFIXES:
            raise InvalidParameterError(
                f"--out must end in one of {', '.join(IMAGE_SUFFIXES)}; got {str(out)!r}."
            )
        if not out.expanduser().parent.is_dir():
            raise InvalidParameterError(f"The folder for --out does not exist: {out.parent}")
        from ..render import heatmap as drawing

        if rows not in drawing.ROW_CHOICES:  # before the model loads, not after a long run
            choices = ", ".join(drawing.ROW_CHOICES)
            raise InvalidParameterError(f"--rows is one of {choices}; got {rows!r}.")
        params = method_params(param, k=k, iterations=iterations, steps=steps, masking=masking)
        attr = compute(
            read_source(prompt, system_prompt, messages),
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
            check=check,
            check_k=check_k,
            device=device,
            dtype=dtype,
        )
        try:
            path = drawing.save_heatmap(attr, out.expanduser(), rows=rows)
        except OSError as exc:
            raise InvalidParameterError(f"Cannot write {out}: {exc.strerror}") from exc
        n_rows, n_cols = len(attr.row_tokens), len(attr.units)
        what = "target and contrast tokens" if attr.contrast is not None else "target tokens"
        line = f"wrote {path} ({n_rows} {what} x {n_cols} {attr.granularity} units)"
        layout = drawing.heatmap_layout(attr, rows)
        if layout.notes:
            line += "; drawn with " + "; ".join(layout.notes)
        typer.echo(line)
