"""`promptxray evaluate`: faithfulness of each method's top-k units on a prompt set.

`evaluate_command` is the whole command as one call (tests and scripts use it without
the CLI framework); the typer command only gathers the options.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .. import api, evaluation
from ..errors import InvalidParameterError
from .common import batch_loader, method_params, parse_list, user_errors
from .options import (
    DeviceOpt,
    DtypeOpt,
    GranularityOpt,
    IterationsOpt,
    LimitOpt,
    MaxTokensOpt,
    ModelOpt,
    ParamOpt,
    StepsOpt,
    with_ray_options,
)


def parse_methods(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] (order kept, repeats dropped)."""
    return parse_list(text, "method", "--methods random,grad_norm")


def evaluate_command(
    data: str | Path,
    out: str | Path,
    methods: str,
    k: int = 3,
    limit: int | None = None,
    granularity: str = "word",
    masking: str = "delete",
    max_new_tokens: int = 64,
    model: str | None = None,
    lm: api.LanguageModel | Callable[[], api.LanguageModel] | None = None,
    iterations: int | None = None,
    steps: int | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    sbert: bool = True,
    progress: bool = True,
    console: Console | None = None,
    ray: api.RayOptions | None = None,
) -> evaluation.EvalReport:
    """Run (or resume) an evaluation, print the table and a summary, return the report.

    `lm` (a model or a function returning one) overrides `model`; the CLI passes
    its own loader so tests can swap in a tiny model.
    """
    console = console or Console()
    config = evaluation.EvalConfig(
        methods=parse_methods(methods),
        k=k,
        granularity=granularity,
        masking=masking,
        max_new_tokens=max_new_tokens,
        limit=limit,
        seed=seed,
        iterations=iterations,
        steps=steps,
        params=dict(params or {}),
        use_sbert=sbert,
    )
    report = evaluation.run_evaluation(
        data,
        out,
        config,
        lm=lm,
        model=model,
        console=Console(stderr=True),
        show_progress=progress,
        ray=ray,
    )
    console.print(report.table.rich())
    console.print(
        f"{report.prompts} prompts: {report.computed} rows computed, {report.reused} reused "
        f"from {Path(out) / 'results.sqlite'}."
    )
    if report.bad_lines:
        console.print(f"[yellow]{len(report.bad_lines)} bad lines skipped.[/]")
    for key, method, message in report.errors:
        console.print(f"[yellow]{key}{' · ' + method if method else ''}: {message}[/]")
    console.print("Tables: " + ", ".join(str(p) for p in report.files))
    if report.errors and report.table.n == 0:
        raise InvalidParameterError(
            f"No results: no prompt has a row for every method ({len(report.errors)} errors); "
            f"first error: {report.errors[0][2]}"
        )
    return report


@with_ray_options
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
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out", "-o", metavar="DIR", help="Run folder: results.sqlite and table.md/.csv/.json."
        ),
    ],
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated methods to compare.")
    ] = "random,integrated_gradients,leave_one_out,xprompt,grad_norm",
    k: Annotated[int, typer.Option("--k", help="How many top units to mask.")] = 3,
    limit: LimitOpt = None,
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
    use_sbert: Annotated[
        bool, typer.Option("--sbert/--no-sbert", help="Compute the SentenceBERT similarity.")
    ] = True,
    *,
    ray: api.RayOptions | None,
) -> None:
    """Measure how faithful each method's top-k units are on a prompt set (resumable)."""
    with user_errors("evaluate"):
        load = batch_loader(ray, device, dtype)
        evaluate_command(
            data,
            out_dir,
            methods,
            k=k,
            limit=limit,
            granularity=granularity,
            masking=masking,
            max_new_tokens=max_new_tokens,
            model=model,
            lm=functools.partial(load, model),
            iterations=iterations,
            steps=steps,
            params=method_params(param),
            seed=seed,
            sbert=use_sbert,
            ray=ray,
        )
