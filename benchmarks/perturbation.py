"""Benchmark of the perturbation and joint methods on the default model.

For the first N prompts of ../shared/data/instructions.jsonl, with the model's own
64-token greedy output as target, it measures per method (leave_one_out at token
and word units, random, xprompt at word units):

- median wall-clock seconds and CPU seconds (the machine may be shared, so CPU
  time is the steadier number) and median forward passes (sequences);
- PR@3: exp(mean over target tokens of the log-prob change) when the method's
  top-3 units (xprompt: its selected set) are deleted; lower = more faithful;
- for leave_one_out (token units), the speed-up of batched + prefix-cached scoring
  over a naive loop that scores one variant at a time, measured in the same run;
- xprompt (default budget) against leave-one-out's top-3 on the same PR@3;
  its search against the exhaustive optimum is `benchmarks/joint.py`.

Timing uses one torch thread by default (--threads): on a CPU shared with other
busy processes, two OpenMP threads that wait for each other make every small
operation an order of magnitude slower, which would flatter batching.

Run: .venv/bin/python benchmarks/perturbation.py --n 10
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from promptxray import attribute, build_problem, load_model
from promptxray.masking import mask_context

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "instructions.jsonl"

METHODS = [
    ("leave_one_out (token)", "leave_one_out", "token", {}),
    ("leave_one_out (word)", "leave_one_out", "word", {}),
    ("random (word)", "random", "word", {"seed": 0}),
    ("xprompt (word)", "xprompt", "word", {"k": 3}),
]


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def probability_ratio(lm, problem, units, chosen: list[int], full: torch.Tensor) -> float:
    """exp(mean over target tokens of log p(y_j | x without `chosen`) - log p(y_j | x))."""
    masked = lm.score_variants(
        [mask_context(lm, problem, units, chosen, "delete")], problem.target_ids
    )
    return math.exp(float((masked[0] - full).mean()))


def top3(attr) -> list[int]:
    """The units mask-top-k removes: the one ranking every view and the evaluation use."""
    return sorted(attr.ranking("support")[:3])


def naive_leave_one_out(lm, problem, units) -> torch.Tensor:
    """One variant at a time, whole sequence each time: what batching and caching replace."""
    rows = []
    for i in [None, *range(len(units))]:
        ctx = mask_context(lm, problem, units, [] if i is None else [i], "delete")
        rows.append(lm.score(ctx.ids + problem.target_ids, len(ctx.ids)))
    return torch.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="number of prompts")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not DATA.exists():
        sys.exit(f"Data set not found: {DATA}")
    prompts = [json.loads(line)["prompt"] for line in DATA.read_text().splitlines() if line][
        : args.n
    ]
    lm = load_model()
    rows: dict[str, dict[str, list[float]]] = {
        label: {"wall": [], "cpu": [], "fwd": [], "pr": []} for label, *_ in METHODS
    }
    naive = {"wall": [], "cpu": [], "batched_wall": [], "batched_cpu": [], "maxdiff": []}
    for n, prompt in enumerate(prompts, 1):
        problem = build_problem(lm, prompt, max_new_tokens=64)
        full = lm.score(problem.ids, problem.target_start)
        for label, method, granularity, params in METHODS:
            attr, wall, cpu = timed(attribute, lm, problem, method, granularity, **params)
            row = rows[label]
            row["wall"].append(wall)
            row["cpu"].append(cpu)
            row["fwd"].append(attr.metadata["forward_passes"])
            row["pr"].append(probability_ratio(lm, problem, attr.base_units, top3(attr), full))
            if label == "leave_one_out (token)":
                ref, nwall, ncpu = timed(naive_leave_one_out, lm, problem, attr.base_units)
                naive["wall"].append(nwall)
                naive["cpu"].append(ncpu)
                naive["batched_wall"].append(wall)
                naive["batched_cpu"].append(cpu)
                drop = (ref[:1] - ref[1:]).sum(1)
                diff = (drop - torch.tensor(attr.base_scores)).abs().max().item()
                naive["maxdiff"].append(diff)
        print(
            f"[{n}/{len(prompts)}] {len(problem.context_ids)} context + "
            f"{len(problem.target_ids)} target tokens, {len(problem.units('word'))} words",
            flush=True,
        )
    report(rows, naive, len(prompts), args.threads)


def report(rows, naive, n_prompts: int, threads: int) -> None:
    med = statistics.median
    print()
    print(
        f"Default model, {n_prompts} prompts, target = greedy output (max 64 tokens), "
        f"CPU, {threads} torch thread(s)"
    )
    print(
        f"{'method':24} {'wall s':>8} {'cpu s':>8} {'fwd passes':>10} "
        f"{'PR@3 mean':>10} {'median':>8}"
    )
    for label, row in rows.items():
        print(
            f"{label:24} {med(row['wall']):8.2f} {med(row['cpu']):8.2f} {med(row['fwd']):10.0f} "
            f"{statistics.mean(row['pr']):10.3f} {med(row['pr']):8.3f}"
        )
    print()
    print("leave_one_out (token units): batched + prefix-cached vs naive one-variant loop")
    wall_ratio = [a / b for a, b in zip(naive["wall"], naive["batched_wall"], strict=True)]
    cpu_ratio = [a / b for a, b in zip(naive["cpu"], naive["batched_cpu"], strict=True)]
    print(
        f"  median wall: naive {med(naive['wall']):.2f} s, "
        f"batched {med(naive['batched_wall']):.2f} s"
        f" -> speed-up median {med(wall_ratio):.2f}x (per prompt {min(wall_ratio):.2f}-"
        f"{max(wall_ratio):.2f}x)"
    )
    print(
        f"  median cpu:  naive {med(naive['cpu']):.2f} s, "
        f"batched {med(naive['batched_cpu']):.2f} s"
        f" -> speed-up median {med(cpu_ratio):.2f}x (per prompt {min(cpu_ratio):.2f}-"
        f"{max(cpu_ratio):.2f}x)"
    )
    print(f"  max |score difference| naive vs batched: {max(naive['maxdiff']):.2e}")


if __name__ == "__main__":
    main()
