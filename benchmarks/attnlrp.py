"""Cost of attnlrp relative to one forward of the same prompt + target, on one thread.

For each of the first N prompts of the shared instructions set (default model, its own
greedy output as the target), times in interleaved rounds (so drift in the machine's
load falls on every contender alike): one teacher-forced forward of prompt + target,
`attnlrp` (whole target), `grad_x_input` (whole target), both without the faithfulness
check. Prints per prompt the median seconds and the ratios to the forward, then the
medians over prompts. Goal: attnlrp <= 3x one forward.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attnlrp.py [--n 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from promptxray import attribute, build_problem, load_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "instructions.jsonl"


def seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = args.data.read_text().splitlines()[: args.n]
    prompts = [json.loads(line)["prompt"] for line in lines]
    lm = load_model()
    ratios: dict[str, list[float]] = {"attnlrp": [], "grad_x_input": []}
    forwards = []
    for prompt in prompts:
        problem = build_problem(lm, prompt, max_new_tokens=args.max_new_tokens)
        ids = torch.tensor([problem.ids])

        def forward(ids=ids, start=problem.target_start):
            with torch.no_grad():
                lm.target_logprobs(ids, start)

        runs = {
            "forward": forward,
            "attnlrp": lambda p=problem: attribute(lm, p, "attnlrp", check=False),
            "grad_x_input": lambda p=problem: attribute(lm, p, "grad_x_input", check=False),
        }
        for fn in runs.values():  # warm: first calls pay one-time setup
            fn()
        times: dict[str, list[float]] = {name: [] for name in runs}
        for round_ in range(args.repeats):
            order = list(runs)[round_ % 3 :] + list(runs)[: round_ % 3]
            for name in order:
                times[name].append(seconds(runs[name]))
        median = {name: statistics.median(t) for name, t in times.items()}
        forwards.append(median["forward"])
        for name in ratios:
            ratios[name].append(median[name] / median["forward"])
        print(
            f"tokens={len(problem.ids):4d}  forward={median['forward']:.3f}s  "
            f"attnlrp={median['attnlrp']:.3f}s ({median['attnlrp'] / median['forward']:.2f}x)  "
            f"grad_x_input={median['grad_x_input']:.3f}s "
            f"({median['grad_x_input'] / median['forward']:.2f}x)",
            flush=True,
        )
    print(f"\nprompts: {len(prompts)}  threads: {torch.get_num_threads()}")
    print(f"median forward: {statistics.median(forwards):.3f} s")
    for name, values in ratios.items():
        print(f"median {name} / forward: {statistics.median(values):.2f}x")
    print("goal: attnlrp <= 3x one forward")


if __name__ == "__main__":
    main()
