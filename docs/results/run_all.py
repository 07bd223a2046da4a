"""Reproduce the tables in docs/results: four runs (2 prompt sets x token/word units).

Prompts are sampled across the length range: each shared set is sorted by word
count and the prompts at 60 evenly spaced ranks are kept (in file order) in
`data/{set}_spread60.jsonl`; every third of those ranks (20 prompts, again
spread over the range) forms `data/{set}_spread20.jsonl`, where xprompt_paper
runs too. Rows are keyed by prompt id and text, so both files share one SQLite
store per run and the 20-prompt table reuses the 60-prompt rows.

Every call resumes from the run's SQLite file, so stopping and restarting loses
nothing; runs go round-robin with a growing prompt limit so that, whenever the
time runs out, every table has about the same number of prompts. Equivalent CLI
call for one step:

    promptxray evaluate --data docs/results/data/instructions_spread60.jsonl \
        --methods random,leave_one_out,xprompt --k 3 --granularity word \
        --max-new-tokens 64 --limit 10 --out docs/results/instructions_word

Usage: OMP_NUM_THREADS=1 .venv/bin/python docs/results/run_all.py sample
       OMP_NUM_THREADS=1 .venv/bin/python docs/results/run_all.py run RUN[,RUN...] [STEP] [M,...]
       .venv/bin/python docs/results/run_all.py tables   # final tables, no new rows
RUN is e.g. instructions_word; M,... (default: all four) limits a call to some of
them, e.g. to fill the rows that do not depend on a change to another method.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from promptxray.evaluation import EvalConfig, read_prompts, run_evaluation
from promptxray.evaluation.store import DB_NAME, ResultStore

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[2] / "shared" / "data"
METHODS = ["random", "leave_one_out", "xprompt"]
# single-pass and surrogate methods beside them (issue 30): run with `run RUN STEP M,...`
EXTRA = ["grad_norm", "grad_x_input", "integrated_gradients", "attnlrp", "context_cite"]
PAPER = "xprompt_paper"
SETS = ("instructions", "counseling")
RUNS = [f"{s}_{g}" for s in SETS for g in ("word", "token")]
MAX_NEW_TOKENS = 64  # the harness default
N_PROMPTS, N_PAPER = 60, 20


def sample() -> None:
    """Write the spread60/spread20 subsets of the shared prompt sets."""
    for name in SETS:
        rows = [json.loads(line) for line in (SHARED / f"{name}.jsonl").open() if line.strip()]
        by_length = sorted(range(len(rows)), key=lambda i: (len(rows[i]["prompt"].split()), i))
        ranks = [round(j * (len(rows) - 1) / (N_PROMPTS - 1)) for j in range(N_PROMPTS)]
        picked = [by_length[r] for r in ranks]
        subsets = {"spread60": picked, "spread20": picked[::3]}
        for suffix, chosen in subsets.items():
            out = HERE / "data" / f"{name}_{suffix}.jsonl"
            with out.open("w", encoding="utf-8") as fh:
                for i in sorted(chosen):
                    fh.write(json.dumps(rows[i], ensure_ascii=False) + "\n")
            words = sorted(len(rows[i]["prompt"].split()) for i in chosen)
            print(f"{out.name}: {len(chosen)} prompts, {words[0]}-{words[-1]} words")


def config_for(run: str, methods: list[str], limit: int | None) -> EvalConfig:
    return EvalConfig(
        methods=methods,
        k=3,
        granularity=run.split("_")[1],
        masking="delete",
        max_new_tokens=MAX_NEW_TOKENS,
        limit=limit,
        use_sbert=True,
    )


def data_file(run: str, suffix: str) -> Path:
    return HERE / "data" / f"{run.split('_')[0]}_{suffix}.jsonl"


def complete_records(run: str, suffix: str, methods: list[str]) -> list:
    """Prompts with a row for every method (workers may fill any prompt), in file order."""
    from promptxray.model import DEFAULT_MODEL

    records, _ = read_prompts(data_file(run, suffix))
    db = HERE / run / DB_NAME
    if not db.exists():
        return []
    store = ResultStore(db)
    config = config_for(run, methods, None)
    done = [
        rec
        for rec in records
        if all(store.has_row(store.row_key(rec, m, DEFAULT_MODEL, config)) for m in methods)
    ]
    store.close()
    return done


def tables() -> None:
    """Rewrite each run's tables over its complete prompts (no new rows): the 60-prompt
    table of the three methods, and the 20-prompt table with xprompt_paper beside them;
    all of them, in order, into TABLES.md (the README quotes its numbers)."""
    from promptxray.api import DEFAULT_MODEL
    from promptxray.evaluation.runner import _table, write_table

    sections = [
        "# All result tables\n\nWritten by `run_all.py tables` from the runs' SQLite "
        "files; see README.md for what was run and how to read them.\n"
    ]
    for run in RUNS:
        for suffix, methods, folder in (
            ("spread60", METHODS, HERE / run),
            ("spread20", [*METHODS, PAPER], HERE / run / "with_paper"),
        ):
            done = complete_records(run, suffix, methods)
            if not done:
                continue
            store = ResultStore(HERE / run / DB_NAME)
            config = config_for(run, methods, None)
            table = _table(store, done, DEFAULT_MODEL, config, str(data_file(run, suffix)))
            store.close()
            write_table(table, folder)
            label = run if suffix == "spread60" else f"{run}/with_paper"
            sections.append(f"## `{label}` ({len(done)} prompts)\n\n{table.to_markdown()}\n")
            print(f"{run} {suffix}: {len(done)} complete prompts")
    (HERE / "TABLES.md").write_text("\n".join(sections), encoding="utf-8")


ALL20 = [
    "random",
    "grad_norm",
    "grad_x_input",
    "integrated_gradients",
    "attnlrp",
    "leave_one_out",
    "context_cite",
    "xprompt",
]


def tables20() -> None:
    """The 20-prompt tables of the word runs with every method (issue 30) and xprompt v3
    beside xprompt_paper (issue 31), over the prompts where all of them have a row;
    appended to TABLES.md (the 60-prompt tables above stay those of xprompt v2)."""
    from promptxray.api import DEFAULT_MODEL
    from promptxray.evaluation.runner import _table, write_table

    sections = []
    for run in ("instructions_word", "counseling_word"):
        for methods, folder in ((ALL20, "all_methods"), ([*ALL20[-3:], PAPER], "with_paper")):
            done = complete_records(run, "spread20", methods)
            if not done:
                continue
            store = ResultStore(HERE / run / DB_NAME)
            config = config_for(run, methods, None)
            table = _table(store, done, DEFAULT_MODEL, config, str(data_file(run, "spread20")))
            store.close()
            write_table(table, HERE / run / folder)
            sections.append(f"## `{run}/{folder}` ({len(done)} prompts)\n\n{table.to_markdown()}\n")
            print(f"{run} {folder}: {len(done)} complete prompts")
    text = (HERE / "TABLES.md").read_text(encoding="utf-8").split("\n# Every method")[0]
    head = "# Every method on the 20-prompt sets (xprompt v3)\n\nBy `run_all.py tables20`.\n"
    out = text.rstrip() + "\n\n" + head + "\n" + "\n".join(sections)
    (HERE / "TABLES.md").write_text(out, encoding="utf-8")


def run(runs: list[str], step: int, methods: list[str]) -> None:
    from promptxray import load_model

    torch.set_num_threads(1)  # the machine is shared: one thread avoids oversubscription
    lm = load_model()
    for limit in range(step, N_PROMPTS + step, step):
        for name in runs:
            jobs = [("spread60", [m for m in methods if m != PAPER], min(limit, N_PROMPTS))]
            if limit <= N_PROMPTS and PAPER in methods:
                jobs.append(("spread20", [PAPER], min(limit // 3, N_PAPER)))
            for suffix, job_methods, cap in jobs:
                if cap < 1 or not job_methods:
                    continue
                started = time.time()
                report = run_evaluation(
                    data_file(name, suffix),
                    HERE / name,
                    config_for(name, job_methods, cap),
                    lm=lm,
                    show_progress=False,
                )
                print(
                    f"{time.strftime('%H:%M:%S')} {name} {suffix} {job_methods} limit={cap}: "
                    f"{report.computed} computed, {report.reused} reused, "
                    f"{len(report.errors)} errors, {time.time() - started:.0f} s",
                    flush=True,
                )


def run20(runs: list[str], methods: list[str]) -> None:
    """Fill the 20-prompt sets (every third rank of the 60) with `methods`, one prompt
    at a time round-robin over the runs, so a stop leaves equal prefixes."""
    from promptxray import load_model

    torch.set_num_threads(1)
    lm = load_model()
    for cap in range(1, N_PAPER + 1):
        for name in runs:
            started = time.time()
            report = run_evaluation(
                data_file(name, "spread20"),
                HERE / name,
                config_for(name, methods, cap),
                lm=lm,
                show_progress=False,
            )
            print(
                f"{time.strftime('%H:%M:%S')} {name} spread20 {methods} limit={cap}: "
                f"{report.computed} computed, {report.reused} reused, "
                f"{len(report.errors)} errors, {time.time() - started:.0f} s",
                flush=True,
            )


def main() -> None:
    args = sys.argv[1:]
    if args == ["sample"]:
        sample()
    elif args == ["tables"]:
        tables()
    elif args == ["tables20"]:
        tables20()
    elif args and args[0] == "run20":
        run20(args[1].split(","), args[2].split(","))
    elif args and args[0] == "run":
        step = int(args[2]) if len(args) > 2 else 10
        methods = args[3].split(",") if len(args) > 3 else [*METHODS, PAPER]
        unknown = set(methods) - {*METHODS, *EXTRA, PAPER}
        if unknown:
            sys.exit(f"unknown methods {sorted(unknown)}; choose from {[*METHODS, *EXTRA, PAPER]}")
        run(args[1].split(","), step, methods)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
