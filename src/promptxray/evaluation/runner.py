"""`promptxray evaluate`'s run: resumable, one committed SQLite row at a time.

A faithfulness run over a hundred prompts takes long on a CPU, and machines get
busy or restarted. So every finished (prompt, method) row is committed to SQLite
(`store.ResultStore`) the moment it exists, the original output of each prompt is
stored too, and a rerun with the same settings skips whatever is already there: it
never recomputes nor loses a row, and its table equals an uninterrupted run's.
Each prompt's work (`work.compute_prompt`) runs here or, with `ray`, on Ray
workers; either way this process alone writes the store.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api import LanguageModel, as_model
from ..batch import BadLine, progress_bar, run_batch_on_ray, usable_rows
from ..distributed import RayOptions, RayStats, check_ready
from .config import EvalConfig
from .rows import PromptRecord, usable_prompts
from .store import DB_NAME, ResultStore
from .table import ResultsTable, build_table
from .work import PromptJob, PromptResult, compute_prompt, prompt_job


@dataclass
class EvalReport:
    table: ResultsTable
    computed: int
    reused: int
    bad_lines: list[BadLine]
    errors: list[tuple[str, str, str]]  # (prompt key, method or "", message)
    prompts: int
    files: list[Path]
    ray: RayStats | None = None  # when the rows were computed on Ray


RowHook = Callable[[dict[str, Any]], None]


def run_evaluation(
    data: str | Path,
    out_dir: str | Path,
    config: EvalConfig | None = None,
    lm: Any = None,
    model: str | None = None,
    on_row: RowHook | None = None,
    console: Any = None,
    show_progress: bool = True,
    ray: RayOptions | None = None,
) -> EvalReport:
    """Evaluate `config.methods` on the prompts of `data`, writing into `out_dir`.

    `lm` is a loaded model or a function returning one (called only once the
    settings and the data file check out); without it `model` is loaded.
    `on_row` is called after each newly computed row is committed (it may raise to
    stop the run: the rows so far stay, and a rerun continues from there).
    With `ray` (a `distributed.RayOptions`) whole prompts run on Ray workers, each
    loading the model once (`lm` must then be a loader function, or `model` a
    name); this process keeps the store and commits each prompt as it returns.
    """
    from rich.console import Console

    config = config or EvalConfig()
    config.check()
    if ray is not None:
        check_ready(ray)
    console = console or Console(stderr=True)
    records, bad = usable_rows(data, usable_prompts, config.limit, console, "prompts")
    config.check_k(records)
    out = Path(out_dir)
    store = ResultStore(out / DB_NAME)
    stats = None
    try:
        if ray is None:
            lm = _loaded(lm, model)
        total = len(records) * len(config.methods)
        label = "evaluate (ray)" if ray is not None else "evaluate"
        with progress_bar(console, show_progress, total, label) as advance:
            ledger = _Ledger(store, config, advance, on_row)
            if ray is not None:
                worker_model = model if lm is None else lm  # each worker loads its own
                model_name, stats = _run_on_ray(records, ledger, config, worker_model, ray, console)
            else:
                model_name = lm.name
                for rec in records:
                    _run_here(lm, rec, ledger, config)
        table = _table(store, records, model_name, config, str(data))
    finally:
        store.close()
    files = write_table(table, out)
    return EvalReport(
        table=table,
        computed=ledger.computed,
        reused=ledger.reused,
        bad_lines=bad,
        errors=ledger.errors,
        prompts=len(records),
        files=files,
        ray=stats,
    )


def _loaded(lm: Any, model: str | None) -> Any:
    """The model to run here: `lm` as given or from its loader, else `model` by name."""
    if lm is None:
        return as_model(model)
    return lm() if callable(lm) and not hasattr(lm, "tokenizer") else lm


class _Ledger:
    """What a run commits and counts, the same whether a prompt ran here or on Ray:
    each output and row into the store at once, the counts, the errors, the progress."""

    def __init__(
        self,
        store: ResultStore,
        cfg: EvalConfig,
        advance: Callable[[int, str], None],
        on_row: RowHook | None,
    ) -> None:
        self.store, self.cfg, self.advance, self.on_row = store, cfg, advance, on_row
        self.computed = self.reused = 0
        self.errors: list[tuple[str, str, str]] = []

    def job(self, rec: PromptRecord, model: str) -> PromptJob:
        """The prompt's outstanding work; what is stored already counts as reused."""
        job = prompt_job(self.store, rec, model, self.cfg)
        done = len(self.cfg.methods) - len(job.methods)
        self.reused += done
        self.advance(done, rec.key)
        return job

    def output(self, rec: PromptRecord, model: str, fields: dict[str, Any]) -> None:
        self.store.put_output(rec, model, self.cfg.max_new_tokens, **fields)

    def row(self, rec: PromptRecord, model: str, method: str, fields: dict[str, Any]) -> None:
        key = self.store.row_key(rec, method, model, self.cfg)
        self.store.put_row(key, line=rec.line, **fields)
        self.computed += 1
        if fields.get("error"):
            self.errors.append((rec.key, method, fields["error"]))
        self.advance(1, f"{rec.key} · {method}")
        if self.on_row is not None:
            self.on_row({"prompt_key": rec.key, "method": method, **fields})

    def no_output(self, rec: PromptRecord, message: str, methods: int) -> None:
        """The prompt has no y, so none of its methods ran."""
        self.errors.append((rec.key, "", message))
        self.advance(methods, rec.key)

    def landed(self, result: PromptResult) -> None:
        """Commit what a worker computed: y first (when new), then every method's row."""
        if result.new_output is not None:
            self.output(result.rec, result.model, result.new_output)
        if result.error is not None:
            self.no_output(result.rec, result.error, len(result.methods))
        for method, fields in result.rows:
            self.row(result.rec, result.model, method, fields)

    def failed(self, job: PromptJob, model: str, reason: str) -> None:
        """A prompt Ray could not run (its workers kept dying): error rows, not retried."""
        for method in job.methods:
            key = self.store.row_key(job.rec, method, model, self.cfg)
            self.store.put_row(key, line=job.rec.line, error=f"not computed: {reason}")
            self.computed += 1
            self.errors.append((job.rec.key, method, reason))
        self.advance(len(job.methods), job.rec.key)


def _run_here(lm: LanguageModel, rec: PromptRecord, ledger: _Ledger, cfg: EvalConfig) -> None:
    """One prompt in this process, each piece committed the moment it exists."""
    job = ledger.job(rec, lm.name)
    if not job.methods:
        return
    result = compute_prompt(
        lm,
        job,
        cfg,
        on_output=lambda fields: ledger.output(rec, lm.name, fields),
        on_method=lambda method, fields: ledger.row(rec, lm.name, method, fields),
        on_start=lambda method: ledger.advance(0, f"{rec.key} · {method}"),
    )
    if result.error is not None:
        ledger.no_output(rec, result.error, len(job.methods))


def _run_on_ray(
    records: list[PromptRecord],
    ledger: _Ledger,
    config: EvalConfig,
    model: Any,
    options: RayOptions,
    console: Any,
) -> tuple[str, RayStats]:
    """The same rows as `_run_here`, computed by Ray workers and committed here:
    (the model's name as the workers report it, Ray's run statistics)."""
    names: list[str] = []

    def jobs_for(model_name: str) -> list[PromptJob]:
        names.append(model_name)
        return [job for rec in records if (job := ledger.job(rec, model_name)).methods]

    stats = run_batch_on_ray(
        jobs_for,
        functools.partial(compute_prompt, cfg=config),
        model,
        options,
        on_result=ledger.landed,
        on_failure=lambda job, reason: ledger.failed(job, names[0], reason),
        job_key=lambda job: job.rec.key,
        console=console,
    )
    return names[0], stats


def _table(
    store: ResultStore, records: list[PromptRecord], model: str, cfg: EvalConfig, source: str
) -> ResultsTable:
    keys = [store.row_key(rec, m, model, cfg) for rec in records for m in cfg.methods]
    rows = [r for r in store.rows_for(keys) if not r["error"]]
    title = (
        f"{Path(source).name} · {model} · k={cfg.k} · {cfg.granularity} units · "
        f"masking={cfg.masking} · ≤{cfg.max_new_tokens} new tokens · {len(records)} prompts"
    )
    return build_table(rows, cfg.methods, title=title, seed=cfg.seed)


def write_table(table: ResultsTable, out_dir: str | Path) -> list[Path]:
    """Write table.md, table.csv, paired.csv and table.json into the run directory."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, text in (
        ("table.md", table.to_markdown()),
        ("table.csv", table.to_csv()),
        ("paired.csv", table.paired_csv()),
        ("table.json", table.to_json()),
    ):
        path = out / name
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files
