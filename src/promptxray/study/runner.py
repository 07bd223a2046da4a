"""`promptxray study`: every row of a study file on every model, resumable.

Per (row, model) it generates the output, explains the whole output and, when the
output has two tokens or more, its first and second halves separately (how
importance shifts as generation goes on: two attributions of spans, far cheaper
than the token x unit matrix), then checks adherence; the whole output's explanation
keeps its faithfulness check (`payload["check"]`). Each finished row is
committed to SQLite at once, so a stopped study resumes where it stopped and
recomputes nothing. The gallery rows (`gallery_keys`) also keep the whole
attribution with its matrix, for the report's side-by-side heatmaps.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..api import (
    DEFAULT_MODEL,
    LanguageModel,
    Problem,
    as_model,
    attribute,
    build_problem,
    check_request,
)
from ..batch import BadLine, SqliteStore, progress_bar, run_batch_on_ray, usable_rows
from ..distributed import RayOptions, check_ready
from ..errors import InvalidParameterError, PromptXrayError
from ..sqlite_schema import Table
from .checks import adherence
from .measures import earlier_output_share, part_shares, positional_profile
from .spec import StudyRow, read_study

DB_NAME = "study.sqlite"

STUDY_ROWS = Table(
    "study_rows",
    (
        ("row_key", "TEXT"),
        ("sha", "TEXT"),
        ("model", "TEXT"),
        ("method", "TEXT"),
        ("granularity", "TEXT"),
        ("max_new_tokens", "INTEGER"),
        ("params", "TEXT"),
        ("line", "INTEGER"),
        ("task", "TEXT"),
        ("structure", "TEXT"),
        ("grp", "TEXT"),
        ("error", "TEXT"),
        ("payload", "TEXT"),
    ),
    key=("row_key", "sha", "model", "method", "granularity", "max_new_tokens", "params"),
)


@dataclass
class StudyConfig:
    models: list[str] = field(default_factory=lambda: [DEFAULT_MODEL])
    method: str = "grad_norm"
    granularity: str = "word"
    max_new_tokens: int = 24
    limit: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if not self.models:
            raise InvalidParameterError("models is empty: give at least one model.", param="models")
        if self.granularity in ("regex", "token"):
            raise InvalidParameterError(
                "A study groups units into parts: use word, sentence, line or paragraph units.",
                param="granularity",
            )
        if self.max_new_tokens < 1:
            raise InvalidParameterError(
                "max_new_tokens must be at least 1.", param="max_new_tokens"
            )
        if self.limit is not None and self.limit < 1:
            raise InvalidParameterError("limit must be at least 1.", param="limit")
        check_request(self.method, self.granularity, None, self.params)

    @functools.cached_property
    def params_key(self) -> str:
        """The method's result key, resolved once (every stored row's key holds it)."""
        request = check_request(self.method, self.granularity, None, self.params)
        return json.dumps(request.spec.result_key(request.params), sort_keys=True)


class StudyStore(SqliteStore):
    """The study's SQLite file: one committed row per (study row, model, settings)."""

    tables = (STUDY_ROWS,)

    def key(self, row: StudyRow, model: str, cfg: StudyConfig) -> dict[str, Any]:
        return {
            "row_key": row.key,
            "sha": row.sha,
            "model": model,
            "method": cfg.method,
            "granularity": cfg.granularity,
            "max_new_tokens": cfg.max_new_tokens,
            "params": cfg.params_key,
        }

    def has(self, key: dict[str, Any]) -> bool:
        return self.get("study_rows", key) is not None

    def put(self, key: dict[str, Any], row: StudyRow, payload: dict | None, error: str | None):
        self.insert(
            "study_rows",
            {
                **key,
                "line": row.line,
                "task": row.task,
                "structure": row.structure,
                "grp": row.group,
                "error": error,
                "payload": json.dumps(payload, ensure_ascii=False) if payload else None,
            },
        )

    def results(self, rows: list[StudyRow], models: list[str], cfg: StudyConfig) -> list[dict]:
        """The stored results of these rows on these models, in file order, errors left out."""
        out = []
        for model in models:
            for row in rows:
                found = self.get("study_rows", self.key(row, model, cfg))
                if found is not None and not found["error"]:
                    out.append({**dict(found), "payload": json.loads(found["payload"])})
        return out


@dataclass
class StudyReport:
    computed: int
    reused: int
    bad_lines: list[BadLine]
    errors: list[tuple[str, str, str]]  # (row key, model, message)
    rows: list[StudyRow]
    results: list[dict]
    files: list[Path]


def gallery_keys(rows: list[StudyRow]) -> set[str]:
    """The rows the report shows as heatmaps: per task, the first group (in file order)
    among those with the most structures, all of its rows."""
    by_task: dict[str, dict[str, list[StudyRow]]] = {}
    for row in rows:
        by_task.setdefault(row.task, {}).setdefault(row.group, []).append(row)
    keys: set[str] = set()
    for groups in by_task.values():
        widest = max(len({r.structure for r in g}) for g in groups.values())
        first = next(g for g in groups.values() if len({r.structure for r in g}) == widest)
        keys.update(r.key for r in first)
    return keys


def run_study(
    data: str | Path,
    out_dir: str | Path,
    config: StudyConfig | None = None,
    loaders: dict[str, Any] | None = None,
    console: Any = None,
    show_progress: bool = True,
    report: bool = True,
    ray: RayOptions | None = None,
) -> StudyReport:
    """Run the study and (with `report`) write its tables and HTML report into `out_dir`.

    `loaders` maps a model name to a loaded model or a function returning one
    (tests pass tiny models); other names are loaded with `load_model`, one model
    at a time, after the settings and the file check out. With `ray` (a
    `distributed.RayOptions`) each model's rows run on Ray workers that load it
    once; this process keeps the store and commits each row as it returns.
    """
    from rich.console import Console

    config = config or StudyConfig()
    config.check()
    if ray is not None:
        check_ready(ray)
    console = console or Console(stderr=True)
    rows, bad = usable_rows(data, read_study, config.limit, console, "rows")
    out = Path(out_dir)
    store = StudyStore(out / DB_NAME)
    gallery = gallery_keys(rows)
    computed = reused = 0
    errors: list[tuple[str, str, str]] = []
    try:
        total = len(rows) * len(config.models)
        with progress_bar(console, show_progress, total, "study") as advance:
            for model_name in config.models:
                todo = [r for r in rows if not store.has(store.key(r, model_name, config))]
                reused += len(rows) - len(todo)
                advance(len(rows) - len(todo), model_name)
                if not todo:
                    continue

                def record(
                    row: StudyRow, payload: dict | None, error: str | None, model=model_name
                ) -> None:
                    """Commit one row the moment it exists, here or from a Ray worker."""
                    nonlocal computed
                    store.put(store.key(row, model, config), row, payload, error)
                    computed += 1
                    if error:
                        errors.append((row.key, model, error))
                    advance(1, f"{model} · {row.key}")

                model = (loaders or {}).get(model_name, model_name)
                if ray is not None:
                    _rows_on_ray(todo, model_name, model, config, gallery, ray, record, console)
                    continue
                lm = as_model(model)
                for row in todo:
                    advance(0, f"{model_name} · {row.key}")
                    record(row, *_explain_row(lm, row, config, row.key in gallery))
        results = store.results(rows, config.models, config)
    finally:
        store.close()
    files: list[Path] = []
    if report:
        from .report import write_report

        files = write_report(rows, results, config, out, source=str(data))
    return StudyReport(computed, reused, bad, errors, rows, results, files)


def explain_job(lm: LanguageModel, job: tuple[StudyRow, bool], cfg: StudyConfig) -> tuple:
    """One row's work on a Ray worker: (row, payload, error), as `_explain_row` computes it."""
    row, keep_matrix = job
    return (row, *_explain_row(lm, row, cfg, keep_matrix))


def _rows_on_ray(
    todo: list[StudyRow],
    model_name: str,
    model: Any,
    cfg: StudyConfig,
    gallery: set[str],
    options: RayOptions,
    record: Callable[[StudyRow, dict | None, str | None], None],
    console: Any,
) -> None:
    """The rows of one model on Ray workers; each is committed through `record` as it lands.

    A row whose workers kept dying is recorded as an error row ("not computed: ...").
    """
    run_batch_on_ray(
        [(row, row.key in gallery) for row in todo],
        functools.partial(explain_job, cfg=cfg),
        model,
        options,
        on_result=lambda result: record(*result),
        on_failure=lambda job, reason: record(job[0], None, f"not computed: {reason}"),
        job_key=lambda job: job[0].key,
        console=console,
        label=f"{model_name}: ",
    )


def _explain_row(
    lm: LanguageModel, row: StudyRow, cfg: StudyConfig, keep_matrix: bool
) -> tuple[dict | None, str | None]:
    started = time.perf_counter()
    try:
        problem = build_problem(
            lm, row.prompt, system_prompt=row.system_prompt, max_new_tokens=cfg.max_new_tokens
        )
        whole = attribute(
            lm, problem, cfg.method, cfg.granularity, matrix=keep_matrix, params=cfg.params
        )
        halves = _halves(lm, row, problem, cfg)
    except PromptXrayError as exc:
        return None, str(exc)
    verdicts = adherence(row.checks, problem.output)
    payload = {
        "output": problem.output,
        "output_tokens": len(problem.output_ids),
        "shares": part_shares(row, whole),
        "profile": positional_profile(row, whole),
        "early": halves[0],
        "late": halves[1],
        "late_on_earlier_output": halves[2],
        "checks": verdicts,
        "adherent": None if verdicts is None else all(verdicts.values()),
        "units": [u.text for u in whole.units],
        "scores": whole.scores,
        "seconds": time.perf_counter() - started,
        "forward_passes": whole.record.cost.forward_passes,
        # The whole output's faithfulness check (verdict and figures); older rows lack it.
        "check": None if whole.record.check is None else asdict(whole.record.check),
    }
    if keep_matrix:
        payload["attribution"] = whole.to_dict()
    return payload, None


def _halves(
    lm: LanguageModel, row: StudyRow, problem: Problem, cfg: StudyConfig
) -> tuple[dict[str, float] | None, dict[str, float] | None, float | None]:
    """Part shares for the first and the second half of the output tokens (None if < 2),
    and the second half's share on the output before it."""
    spans = problem.output_spans
    n = len(problem.output_ids)
    visible = [i for i in range(n) if spans[i][1] > spans[i][0]]
    if len(visible) < 2:
        return None, None, None
    middle = len(visible) // 2
    out: list[Any] = []
    for chosen in (visible[:middle], visible[middle:]):
        span = (spans[chosen[0]][0], spans[chosen[-1]][1])
        part = build_problem(
            lm,
            row.prompt,
            system_prompt=row.system_prompt,
            output_ids=problem.output_ids,
            span=span,
        )
        # Only the shares of a half are read: its faithfulness check would go unused.
        out.append(attribute(lm, part, cfg.method, cfg.granularity, params=cfg.params, check=False))
    early, late = out
    return part_shares(row, early), part_shares(row, late), earlier_output_share(late)
