"""What `promptxray evaluate` does, kept apart from the CLI framework so it stays one call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InvalidParameterError
from .harness import EvalConfig, EvalReport, run_evaluation


def parse_methods(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] (order kept, repeats dropped)."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise InvalidParameterError("Give at least one method, e.g. --methods random,grad_norm.")
    return list(dict.fromkeys(names))


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
    lm: Any = None,
    iterations: int | None = None,
    steps: int | None = None,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    sbert: bool = True,
    progress: bool = True,
    console: Any = None,
    ray: Any = None,
) -> EvalReport:
    """Run (or resume) an evaluation, print the table and a summary, return the report.

    `lm` (a model or a function returning one) overrides `model`; the CLI passes
    its own loader so tests can swap in a tiny model.
    """
    from rich.console import Console

    console = console or Console()
    config = EvalConfig(
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
    report = run_evaluation(
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
