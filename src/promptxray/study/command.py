"""What `promptxray study` does, kept apart from the CLI framework so it stays one call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError
from .runner import StudyConfig, StudyReport, run_study


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
    console: Any = None,
    ray: Any = None,
) -> StudyReport:
    """Run (or resume) a study and print where its report is."""
    from rich.console import Console

    names = list(dict.fromkeys(m.strip() for m in models.split(",") if m.strip()))
    if not names:
        raise InvalidParameterError("Give at least one model, e.g. --models SmolLM2-135M-Instruct.")
    console = console or Console(stderr=True)
    config = StudyConfig(
        models=names,
        method=method,
        granularity=granularity,
        max_new_tokens=max_new_tokens,
        limit=limit,
        params=params or {},
    )
    loaders = {name: (lambda name=name: load(name)) for name in names}
    report = run_study(data, out, config, loaders=loaders, console=console, show_progress=progress)
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
