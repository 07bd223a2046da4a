"""`promptxray study`: token importance across tasks, prompt structures and models.

`study_command` is the whole command as one call (tests and scripts use it without the
CLI framework); the typer command only gathers the options.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .. import api, study
from ..errors import InvalidParameterError
from .common import batch_loader, method_params, parse_list, user_errors
from .options import (
    DeviceOpt,
    DtypeOpt,
    GranularityOpt,
    LimitOpt,
    MaxTokensOpt,
    ParamOpt,
    with_ray_options,
)


def study_command(
    data: str | Path,
    out: str | Path,
    models: str,
    load: Callable[[str], Any],
    method: str = "grad_norm",
    granularity: str = "word",
    max_new_tokens: int = 24,
    limit: int | None = None,
    params: dict[str, Any] | None = None,
    progress: bool = True,
    console: Console | None = None,
    ray: api.RayOptions | None = None,
) -> study.StudyReport:
    """Run (or resume) a study and print where its report is.

    `load` loads a model by name; with `ray` it runs on each Ray worker instead of here.
    """
    names = parse_list(models, "model", f"--models {api.DEFAULT_MODEL}")
    console = console or Console(stderr=True)
    config = study.StudyConfig(
        models=names,
        method=method,
        granularity=granularity,
        max_new_tokens=max_new_tokens,
        limit=limit,
        params=params or {},
    )
    loaders = {name: functools.partial(load, name) for name in names}
    report = study.run_study(
        data, out, config, loaders=loaders, console=console, show_progress=progress, ray=ray
    )
    console.print(
        f"{len(report.rows)} rows × {len(names)} models: {report.computed} computed, "
        f"{report.reused} reused, {len(report.errors)} errors, "
        f"{len(report.bad_lines)} bad lines skipped."
    )
    for key, model, message in report.errors[:5]:
        console.print(f"[yellow]{model} · {key}: {message}[/]", soft_wrap=True)
    if report.files:
        console.print(f"Report: {Path(out) / 'report.html'}")
    if report.rows and report.computed + report.reused > 0 and not report.results:
        raise InvalidParameterError(f"Every row failed; first error: {report.errors[0][2]}")
    return report


@with_ray_options
def study_cmd(
    data: Annotated[
        Path, typer.Argument(metavar="FILE", help="Study file (JSONL; see docs/studies.md).")
    ],
    out_dir: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="DIR", help="Folder: study.sqlite, CSVs, report.html."),
    ],
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated models (names, ids or paths).")
    ] = api.DEFAULT_MODEL,
    method: Annotated[str, typer.Option("--method", help="Attribution method.")] = "grad_norm",
    granularity: GranularityOpt = "word",
    max_new_tokens: MaxTokensOpt = 24,
    limit: LimitOpt = None,
    param: ParamOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    *,
    ray: api.RayOptions | None,
) -> None:
    """Compare token importance across tasks, prompt structures and models (resumable)."""
    with user_errors("study"):
        study_command(
            data,
            out_dir,
            models,
            load=batch_loader(ray, device, dtype),
            method=method,
            granularity=granularity,
            max_new_tokens=max_new_tokens,
            limit=limit,
            params=method_params(param),
            ray=ray,
        )
