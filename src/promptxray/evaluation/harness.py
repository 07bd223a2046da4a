"""The dataset harness behind `promptxray evaluate`: resumable, one SQLite row at a time.

A faithfulness run over a hundred prompts takes long on a CPU, and machines get
busy or restarted. So every finished (prompt, method) row is committed to SQLite
the moment it exists, the original output of each prompt is stored too, and a
rerun with the same settings skips whatever is already there: it never
recomputes nor loses a row, and its table equals an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..batch import BadLine, SqliteStore, progress_bar, read_jsonl, row_key, usable_rows
from ..conversation import conversation_from, recorded_messages
from ..errors import EmptyTargetError, InvalidParameterError, PromptXrayError
from ..methods.base import MethodParams
from ..model import ROLE_USER, Message
from ..segments import check_granularity, segment
from .metrics import METRIC_NAMES, FaithfulnessScorer
from .table import ResultsTable, build_table

DB_NAME = "results.sqlite"


# ----- input ---------------------------------------------------------------------------
_NO_CONTRAST = (
    "'contrast' is not evaluated: the faithfulness metrics regenerate and score the target "
    "alone, not log p(target) - log p(contrast); explain contrasts with `explain --contrast`."
)


@dataclass(frozen=True)
class PromptRecord:
    """One usable row: the messages the model reads and, optionally, a supplied target.

    A `prompt` (with an optional `system_prompt`) is the one- or two-message case of
    `messages`, so both kinds of row run through the same code. `target` is the text
    explained and measured against instead of the model's generation: the row's
    `target`, or the content of a final assistant message.
    """

    line: int
    key: str
    context: tuple[Message, ...]
    target: str | None = None

    @property
    def prompt(self) -> str:
        """The last user message: what a single-turn row calls its prompt."""
        return next(m.content for m in reversed(self.context) if m.role == ROLE_USER)

    @property
    def messages(self) -> list[dict[str, str]]:
        """The context as `build_problem(messages=...)` takes it."""
        return [m.as_dict() for m in self.context]

    @property
    def recorded_messages(self) -> list[dict[str, str]] | None:
        """The conversation a stored output keeps: None for a prompt (+ system prompt)."""
        return recorded_messages(self.context)

    @property
    def sha(self) -> str:
        """The content part of every stored row's key: all the model reads, and the target.

        Two rows with one `id` that differ only in an earlier turn, the system prompt or
        the supplied target must never share rows. A plain prompt hashes as it always
        has (its text alone), so result folders of single-turn runs still resume.
        """
        if self.target is None and self.recorded_messages is None and len(self.context) == 1:
            text = self.prompt
        else:
            text = json.dumps(
                {"messages": self.messages, "target": self.target},
                sort_keys=True,
                ensure_ascii=False,
            )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def source_texts(self) -> list[str]:
        """The texts whose units are masked: every message the model reads."""
        return [m.content for m in self.context]


def check_row(obj: Mapping[str, Any]) -> tuple[tuple[Message, ...], str | None]:
    """The one check of an input row: (the messages the model reads, the supplied target).

    A row has `prompt` (optionally `system_prompt`) or `messages`, checked by the
    library's own `conversation_from`, so a bad conversation reads the same here as
    on the CLI and the page; optionally a non-empty `target`. A row with `contrast`
    is refused: mask-and-regenerate, PR and KL measure how the target alone moves, so
    they would not test an attribution of log p(target) - log p(contrast) and a
    table of them would look faithful or not for the wrong reason.
    """
    if obj.get("contrast") is not None:
        raise InvalidParameterError(_NO_CONTRAST)
    prompt, system_prompt, target = (
        _text_field(obj, name) for name in ("prompt", "system_prompt", "target")
    )
    conversation = conversation_from(prompt, system_prompt, obj.get("messages"))
    if target is not None and not target.strip():
        raise EmptyTargetError("The target is empty: give the response to measure against.")
    return conversation.context, conversation.target(target)


def _text_field(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidParameterError(f"'{name}' must be text; got a {type(value).__name__}.")
    return value


def read_prompts(path: str | Path) -> tuple[list[PromptRecord], list[BadLine]]:
    """The usable rows of a JSONL file and the lines that are not (see `check_row`).

    A bad line (not JSON, not an object, a row `check_row` refuses) is reported with
    its line number and the problem in one line, and skipped, so one broken row
    does not cost the whole run.
    """
    lines, bad = read_jsonl(path)
    records: list[PromptRecord] = []
    seen: set[str] = set()
    for number, obj in lines:
        try:
            context, target = check_row(obj)
        except PromptXrayError as exc:
            bad.append(BadLine(number, str(exc)))
            continue
        records.append(PromptRecord(number, row_key(obj, number, seen), context, target))
    bad.sort(key=lambda b: b.line)
    return records, bad


def usable_prompts(path: str | Path) -> tuple[list[PromptRecord], list[BadLine]]:
    """`read_prompts`, refusing a file none of whose rows is usable with the first bad
    row's line and problem, so a one-row file with a broken row says what is wrong."""
    records, bad = read_prompts(path)
    if not records and bad:
        more = f" ({len(bad) - 1} more bad lines)" if len(bad) > 1 else ""
        raise InvalidParameterError(
            f"No usable prompts in {path}: line {bad[0].line}: {bad[0].reason}{more}"
        )
    return records, bad


# ----- settings -----------------------------------------------------------------------
@dataclass
class EvalConfig:
    """Everything that changes a row; each method's share of it is part of the row's key.

    `k`, `masking` and `seed` are settings of the evaluation (how many units are
    masked and how) that every method declaring a parameter of that name also
    receives; `iterations`, `steps` and `params` go to the methods that declare
    them. A row's key holds only its own method's resolved parameters, so changing
    `iterations` never recomputes grad_norm rows.
    """

    methods: list[str] = field(
        default_factory=lambda: [
            "random",
            "integrated_gradients",
            "leave_one_out",
            "xprompt",
            "grad_norm",
        ]
    )
    k: int = 3
    granularity: str = "word"
    masking: str = "delete"
    max_new_tokens: int = 64
    limit: int | None = None
    seed: int = 0
    iterations: int | None = None
    steps: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    use_sbert: bool = True

    def check(self) -> None:
        from .. import masking
        from ..methods import get_method

        if not self.methods:
            raise InvalidParameterError("Give at least one method to evaluate.")
        specs = [get_method(m) for m in self.methods]
        check_granularity(self.granularity)
        if self.granularity == "regex":
            raise InvalidParameterError("Evaluate on token, word, sentence, line or paragraph.")
        masking.check_operator(self.masking)
        if self.k < 1:
            raise InvalidParameterError("k must be at least 1.")
        if self.max_new_tokens < 1:
            raise InvalidParameterError("max_new_tokens must be at least 1.")
        if self.limit is not None and self.limit < 1:
            raise InvalidParameterError("limit must be at least 1.")
        for name in self._targeted():
            if not any(spec.accepts(name) for spec in specs):
                raise InvalidParameterError(
                    f"No method among {', '.join(self.methods)} takes the parameter {name!r}."
                )
        for method in self.methods:
            self.method_params(method)  # every method's parameters resolve before any work

    def check_k(self, records: list[PromptRecord]) -> None:
        """Refuse a k no prompt can give, before any model loads (a k only some prompts
        are too short for becomes those prompts' row errors). Tokens need the model's
        tokenizer, so token units are checked per row instead."""
        if self.granularity == "token" or not records:
            return
        most = max(
            sum(len(segment(text, self.granularity)) for text in rec.source_texts())
            for rec in records
        )
        if self.k > most:
            raise InvalidParameterError(
                f"--k {self.k} is more than any prompt has: the longest has {most} "
                f"{self.granularity} units."
            )

    def _targeted(self) -> dict[str, Any]:
        """Parameters meant for some method: set explicitly, so some method must take them."""
        given = {"iterations": self.iterations, "steps": self.steps}
        return {**{n: v for n, v in given.items() if v is not None}, **self.params}

    def method_params(self, method: str) -> MethodParams:
        """`method`'s resolved parameters: the settings it declares, its defaults for the rest."""
        from ..methods import get_method

        spec = get_method(method)
        shared = {"k": self.k, "masking": self.masking, "seed": self.seed, **self._targeted()}
        return spec.resolve({n: v for n, v in shared.items() if spec.accepts(n)})

    def params_key(self, method: str) -> str:
        """What a stored row was computed with: the method's key, and the metrics."""
        from ..methods import get_method

        key = get_method(method).result_key(self.method_params(method))
        key["sbert"] = self.use_sbert
        return json.dumps(key, sort_keys=True)


# ----- storage --------------------------------------------------------------------------
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS outputs (
    prompt_key TEXT, prompt_sha TEXT, model TEXT, max_new_tokens INTEGER,
    line INTEGER, prompt TEXT, output TEXT, output_ids TEXT, error TEXT, seconds REAL,
    messages TEXT, output_source TEXT,
    PRIMARY KEY (prompt_key, prompt_sha, model, max_new_tokens)
);
CREATE TABLE IF NOT EXISTS rows (
    prompt_key TEXT, prompt_sha TEXT, method TEXT, k INTEGER, granularity TEXT,
    masking TEXT, model TEXT, max_new_tokens INTEGER, params TEXT,
    line INTEGER, error TEXT, operator TEXT, n_units INTEGER,
    {", ".join(f"{m} REAL" for m in METRIC_NAMES)},
    seconds REAL, forward_passes REAL, backward_passes REAL, eval_seconds REAL,
    masked_output TEXT, masked_units TEXT, details TEXT, output_source TEXT,
    PRIMARY KEY (prompt_key, prompt_sha, method, k, granularity, masking, model,
                 max_new_tokens, params)
);
"""
# Columns added after the first result folders were written: an older file gains them on
# open, so it still resumes (its rows were all generated, single-turn prompts).
_ADDED_COLUMNS = {"outputs": ("messages", "output_source"), "rows": ("output_source",)}
_ROW_KEY = (
    "prompt_key",
    "prompt_sha",
    "method",
    "k",
    "granularity",
    "masking",
    "model",
    "max_new_tokens",
    "params",
)


class ResultStore(SqliteStore):
    """The SQLite file of a run directory; every write is committed at once."""

    schema = _SCHEMA

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        for table, columns in _ADDED_COLUMNS.items():
            have = {row["name"] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
        self.conn.commit()

    def get_output(self, rec: PromptRecord, model: str, max_new_tokens: int) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM outputs WHERE prompt_key=? AND prompt_sha=? AND model=? "
            "AND max_new_tokens=?",
            (rec.key, rec.sha, model, max_new_tokens),
        ).fetchone()

    def put_output(self, rec: PromptRecord, model: str, max_new_tokens: int, **fields: Any) -> None:
        values = {
            "prompt_key": rec.key,
            "prompt_sha": rec.sha,
            "model": model,
            "max_new_tokens": max_new_tokens,
            "line": rec.line,
            "prompt": rec.prompt,
            "messages": _json_or_none(rec.recorded_messages),
            **fields,
        }
        self.insert("outputs", values)

    def row_key(self, rec: PromptRecord, method: str, model: str, cfg: EvalConfig) -> tuple:
        return (
            rec.key,
            rec.sha,
            method,
            cfg.k,
            cfg.granularity,
            cfg.masking,
            model,
            cfg.max_new_tokens,
            cfg.params_key(method),
        )

    def has_row(self, key: tuple) -> bool:
        where = " AND ".join(f"{c}=?" for c in _ROW_KEY)
        return self.conn.execute(f"SELECT 1 FROM rows WHERE {where}", key).fetchone() is not None

    def put_row(self, key: tuple, **fields: Any) -> None:
        self.insert("rows", {**dict(zip(_ROW_KEY, key, strict=True)), **fields})

    def rows_for(self, keys: Sequence[tuple]) -> list[dict[str, Any]]:
        where = " AND ".join(f"{c}=?" for c in _ROW_KEY)
        out = []
        for key in keys:
            row = self.conn.execute(f"SELECT * FROM rows WHERE {where}", key).fetchone()
            if row is not None:
                out.append(dict(row))
        return out


# ----- the run --------------------------------------------------------------------------
@dataclass
class EvalReport:
    table: ResultsTable
    computed: int
    reused: int
    bad_lines: list[BadLine]
    errors: list[tuple[str, str, str]]  # (prompt key, method or "", message)
    prompts: int
    files: list[Path]
    ray: Any = None  # distributed.RayStats when the rows were computed on Ray


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
    ray: Any = None,
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

    from ..api import as_model

    config = config or EvalConfig()
    config.check()
    if ray is not None:
        from ..distributed import check_ready

        check_ready(ray)
    console = console or Console(stderr=True)
    records, bad = usable_rows(data, usable_prompts, config.limit, console, "prompts")
    config.check_k(records)
    out = Path(out_dir)
    store = ResultStore(out / DB_NAME)
    stats = None
    try:
        if ray is not None:
            loader = _ray_loader(lm, model)
        elif lm is None:
            lm = as_model(model)
        elif callable(lm) and not hasattr(lm, "tokenizer"):
            lm = lm()
        total = len(records) * len(config.methods)
        label = "evaluate (ray)" if ray is not None else "evaluate"
        with progress_bar(console, show_progress, total, label) as advance:
            ledger = _Ledger(store, config, advance, on_row)
            if ray is not None:
                model_name, stats = _run_on_ray(records, ledger, config, loader, ray)
            else:
                model_name = lm.name
                for rec in records:
                    _run_here(lm, rec, ledger, config)
        if stats is not None:
            console.print(stats.summary(), soft_wrap=True)
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


def _run_here(lm: Any, rec: PromptRecord, ledger: _Ledger, cfg: EvalConfig) -> None:
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


def _ray_loader(lm: Any, model: str | None) -> Callable[[], Any]:
    """What Ray workers load: the loader given, or the named model (never a loaded one)."""
    import functools

    from ..model import load_model

    if lm is None:
        return functools.partial(load_model, model)
    if callable(lm) and not hasattr(lm, "tokenizer"):
        return lm
    raise InvalidParameterError("With Ray, give a model name or a loader, not a model.")


def _run_on_ray(
    records: list[PromptRecord],
    ledger: _Ledger,
    config: EvalConfig,
    loader: Callable[[], Any],
    options: Any,
) -> tuple[str, Any]:
    """The same rows as `_run_here`, computed by Ray workers and committed here:
    (the model's name as the workers report it, Ray's run statistics)."""
    import functools

    from ..distributed import run_on_ray

    names: list[str] = []

    def jobs_for(model_name: str) -> list[PromptJob]:
        names.append(model_name)
        return [job for rec in records if (job := ledger.job(rec, model_name)).methods]

    stats = run_on_ray(
        jobs_for,
        functools.partial(compute_prompt, cfg=config),
        loader,
        options,
        ledger.landed,
        lambda job, reason: ledger.failed(job, names[0], reason),
        job_key=lambda job: job.rec.key,
    )
    return names[0], stats


# ----- one prompt: the unit of work, the same in one process and on a Ray worker -----------
@dataclass
class PromptJob:
    """One prompt's outstanding work, with what the store already knows of it."""

    rec: PromptRecord
    methods: list[str]
    output_ids: list[int] | None = None  # y from an earlier run: never regenerated
    output_error: str | None = None  # an earlier run could not make y


@dataclass
class PromptResult:
    rec: PromptRecord
    model: str
    new_output: dict[str, Any] | None  # y made now: the fields of its `outputs` row
    error: str | None  # the prompt has no y (too long, empty output...): no rows
    methods: list[str] = field(default_factory=list)  # the methods that were asked for
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def prompt_job(store: ResultStore, rec: PromptRecord, model: str, cfg: EvalConfig) -> PromptJob:
    """The methods still missing for this prompt, and its stored y (or y's error)."""
    todo = [m for m in cfg.methods if not store.has_row(store.row_key(rec, m, model, cfg))]
    job = PromptJob(rec, todo)
    if todo:
        row = store.get_output(rec, model, cfg.max_new_tokens)
        if row is not None and row["error"]:
            job.output_error = row["error"]
        elif row is not None:
            job.output_ids = json.loads(row["output_ids"])
    return job


def compute_prompt(
    lm: Any,
    job: PromptJob,
    cfg: EvalConfig,
    on_output: Callable[[dict[str, Any]], None] | None = None,
    on_method: Callable[[str, dict[str, Any]], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> PromptResult:
    """Make y if needed, then run and score every outstanding method of one prompt.

    Touches no store: the single-process run commits through the callbacks as each
    piece finishes; a Ray worker returns the result and the driver commits it.
    """
    result = PromptResult(job.rec, lm.name, None, job.output_error, list(job.methods))
    if job.output_error is not None:
        return result
    try:
        problem, result.new_output = _problem(lm, job, cfg.max_new_tokens)
    except PromptXrayError as exc:
        result.new_output, result.error = {"error": str(exc)}, str(exc)
        if on_output is not None:
            on_output(result.new_output)
        return result
    if result.new_output is not None and on_output is not None:
        on_output(result.new_output)
    scorers: dict[tuple, FaithfulnessScorer] = {}
    for method in job.methods:
        if on_start is not None:
            on_start(method)
        fields = _evaluate_row(lm, problem, method, cfg, scorers)
        fields["output_source"] = problem.output_source
        result.rows.append((method, fields))
        if on_method is not None:
            on_method(method, fields)
    return result


def _problem(lm: Any, job: PromptJob, max_new_tokens: int) -> tuple[Any, dict[str, Any] | None]:
    """The prompt's problem, and the fields of its `outputs` row when y is new.

    y is the supplied target (rebuilt from its text each time: tokenising is cheap,
    and rebuilding it from ids would record it as generated), the stored
    generation (never regenerated), or generated now. The stop token is part of a
    generated y when the model ended early (as in XPrompt's code).
    """
    from ..targets import build_problem

    rec, started = job.rec, time.perf_counter()
    if rec.target is not None:
        problem = build_problem(lm, messages=rec.messages, target=rec.target)
        if job.output_ids is not None:
            return problem, None
    elif job.output_ids is not None:
        return build_problem(lm, messages=rec.messages, output_ids=job.output_ids), None
    else:
        ids = lm.generate(
            lm.encode_messages(rec.context).ids, max_new_tokens=max_new_tokens, keep_stop=True
        )
        problem = build_problem(lm, messages=rec.messages, output_ids=ids)
    return problem, {
        "output": problem.output,
        "output_ids": json.dumps(problem.output_ids),
        "seconds": time.perf_counter() - started,
        "output_source": problem.output_source,
    }


def _evaluate_row(
    lm: Any,
    problem: Any,
    method: str,
    cfg: EvalConfig,
    scorers: dict[tuple, FaithfulnessScorer],
) -> dict[str, Any]:
    """Run one method and score its top-k units; a user-level error becomes the row."""
    from ..api import attribute

    try:
        attribution = attribute(
            lm, problem, method, granularity=cfg.granularity, params=cfg.method_params(method)
        )
        meta = attribution.metadata
        operator = meta["params"].get("masking", cfg.masking)
        units = attribution.units
        signature = (operator, tuple(tuple(u.tokens) for u in units))
        if signature not in scorers:
            scorers[signature] = FaithfulnessScorer(
                lm,
                problem,
                units,
                operator=operator,
                max_new_tokens=cfg.max_new_tokens,
                use_sbert=cfg.use_sbert,
            )
        started = time.perf_counter()
        result = scorers[signature].score(attribution.ranking("support"), cfg.k)
        eval_seconds = time.perf_counter() - started
    except PromptXrayError as exc:
        return {"error": str(exc)}
    return {
        "error": None,
        "operator": operator,
        "n_units": len(units),
        **result.values(),
        "seconds": float(meta.get("seconds", 0.0)),
        "forward_passes": float(meta.get("forward_passes", 0)),
        "backward_passes": float(meta.get("backward_passes", 0)),
        "eval_seconds": eval_seconds,
        "masked_output": result.masked_output,
        "masked_units": json.dumps(result.masked_units, ensure_ascii=False),
        "details": json.dumps(result.details),
    }


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


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


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
