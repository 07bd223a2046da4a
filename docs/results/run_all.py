"""Reproduce the tables in docs/results: four runs (2 prompt sets x token/word units).

The runs share one slow CPU, so they go round-robin with a growing prompt limit
(5, 10, 15, ...): whenever the time runs out, every table has about the same
number of prompts. Every call resumes from the run's SQLite file, so stopping and
restarting this script loses nothing. Equivalent CLI call for one step:

    promptxray evaluate --data docs/results/data/instructions_short50.jsonl \
        --methods random,integrated_gradients,leave_one_out,xprompt,grad_norm \
        --k 3 --granularity token --max-new-tokens 32 --limit 5 \
        --out docs/results/instructions_token

Usage: OMP_NUM_THREADS=1 .venv/bin/python docs/results/run_all.py [STEP] [MAX]
       .venv/bin/python docs/results/run_all.py tables   # final tables, no new rows
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from promptxray import load_model
from promptxray.evaluation.harness import (
    DB_NAME,
    EvalConfig,
    ResultStore,
    read_prompts,
    run_evaluation,
)

HERE = Path(__file__).resolve().parent
METHODS = ["random", "integrated_gradients", "leave_one_out", "xprompt", "grad_norm"]
RUNS = [
    (dataset, granularity)
    for dataset in ("instructions", "counseling")
    for granularity in ("token", "word")
]
MAX_NEW_TOKENS = 32  # the paper-like 64 halves the prompts that fit in our CPU budget


def config_for(granularity: str, limit: int | None) -> EvalConfig:
    return EvalConfig(
        methods=METHODS,
        k=3,
        granularity=granularity,
        masking="delete",
        max_new_tokens=MAX_NEW_TOKENS,
        limit=limit,
        iterations=50,
        n_steps=20,
    )


def complete_records(dataset: str, granularity: str) -> list:
    """Prompts with a row for every method, in file order (workers may fill any prompt)."""
    from promptxray.model import DEFAULT_MODEL

    records, _ = read_prompts(HERE / "data" / f"{dataset}_short50.jsonl")
    db = HERE / f"{dataset}_{granularity}" / DB_NAME
    if not db.exists():
        return []
    store = ResultStore(db)
    config = config_for(granularity, None)
    done = [
        rec
        for rec in records
        if all(store.has_row(store.row_key(rec, m, DEFAULT_MODEL, config)) for m in METHODS)
    ]
    store.close()
    return done


def tables() -> None:
    """Rewrite each run's tables over its complete prompts and print them (no new rows).

    Every prompt with all five rows counts, not only a prefix of the file: a
    second worker may fill the file from the end while this script fills it from
    the start, and both write the same keyed rows.
    """
    from promptxray.evaluation.harness import _table, write_table
    from promptxray.model import DEFAULT_MODEL

    for dataset, granularity in RUNS:
        done = complete_records(dataset, granularity)
        if not done:
            continue
        source = HERE / "data" / f"{dataset}_short50.jsonl"
        store = ResultStore(HERE / f"{dataset}_{granularity}" / DB_NAME)
        table = _table(store, done, DEFAULT_MODEL, config_for(granularity, None), str(source))
        store.close()
        write_table(table, HERE / f"{dataset}_{granularity}")
        lines = [rec.line for rec in done]
        print(table.to_markdown())
        print(f"prompt lines used: {lines}\n")


def main() -> None:
    if sys.argv[1:] == ["tables"]:
        tables()
        return
    step = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    most = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    torch.set_num_threads(1)  # the machine is shared: one thread avoids oversubscription
    lm = load_model()
    for limit in range(step, most + 1, step):
        for dataset, granularity in RUNS:
            started = time.time()
            config = config_for(granularity, limit)
            report = run_evaluation(
                HERE / "data" / f"{dataset}_short50.jsonl",
                HERE / f"{dataset}_{granularity}",
                config,
                lm=lm,
                show_progress=False,
            )
            print(
                f"{time.strftime('%H:%M:%S')} {dataset}/{granularity} limit={limit}: "
                f"{report.computed} computed, {report.reused} reused, "
                f"{len(report.errors)} errors, {time.time() - started:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
