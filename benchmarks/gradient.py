"""Cost of gradient salience relative to one teacher-forced forward pass.

Prints, over the first N prompts of ../shared/data/instructions.jsonl and the
default model, the median seconds of: one teacher-forced forward (prompt + 64-token
generation), `grad_norm` (one forward + one backward), their ratio (goal <= 3), and a
full `explain` including the 64-token generation. All measured in this one run.

    .venv/bin/python benchmarks/gradient.py [--n 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from promptxray import attribute, build_problem, explain, load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "instructions.jsonl"


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    prompts = [json.loads(line)["prompt"] for line in DATA.read_text().splitlines()[: args.n]]
    lm = load_model()
    rows = []
    for prompt in prompts:
        problem = build_problem(lm, prompt, max_new_tokens=args.max_new_tokens)
        ids = torch.tensor([problem.ids])

        def forward(ids=ids, start=problem.target_start):
            with torch.no_grad():
                lm.target_logprobs(ids, start)

        t_forward = best_of(args.repeats, forward)
        t_grad = best_of(args.repeats, lambda p=problem: attribute(lm, p, "grad_norm"))
        t_explain = best_of(
            1, lambda q=prompt: explain(q, model=lm, max_new_tokens=args.max_new_tokens)
        )
        rows.append((len(problem.ids), t_forward, t_grad, t_explain))
        print(
            f"tokens={len(problem.ids):4d}  forward={t_forward:.3f}s  grad_norm={t_grad:.3f}s  "
            f"ratio={t_grad / t_forward:.2f}  explain+generate={t_explain:.2f}s",
            flush=True,
        )
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    ratio = statistics.median(r[2] / r[1] for r in rows)
    print(f"\nprompts: {len(rows)}   median sequence length: {med[0]:.0f} tokens")
    print(f"median teacher-forced forward: {med[1]:.3f} s")
    print(f"median grad_norm (1 fwd + 1 bwd): {med[2]:.3f} s")
    print(f"median ratio grad_norm / forward: {ratio:.2f}  (goal <= 3)")
    print(f"median full explain incl. {args.max_new_tokens}-token generation: {med[3]:.2f} s")


if __name__ == "__main__":
    main()
