"""Benchmark of joint attribution against the exhaustive optimum.

On the first N prompts of ../shared/data/instructions.jsonl that have at most 20
word units (file order), with the model's own greedy output as y (word units,
k = 3, `delete` masking), it finds the optimum of

    L(S) = log p(y | prompt without the units of S),  |S| = k

by scoring every k-set (xprompt strategy="exhaustive"), and reports for each
search the log-probability drop it reaches (baseline L minus its L), the gap to
the optimum and the masked prompts it scored ("passes"; the unmasked prompt
included, the one gradient pass not):

- leave-one-out's top k (n + 1 passes, plus the k-set itself);
- greedy forward selection with every unit a candidate in every round;
- xprompt with its default budget 2 (n + 1), with twice that, 4 (n + 1), and with a
  tenth of xprompt_paper's passes (budget 20);
- xprompt_paper: Algorithm 1 as published, 200 iterations. It runs with `delete`
  masking here, not the paper's zero embeddings, so that every search minimises
  the same L and the gap means the same thing.

Then the drop reached as a function of passes spent (the searches' trajectories),
as a share of the optimum, so the paper's search and ours compare at equal cost.

One torch thread (--threads) so timings are not the contention of a shared CPU.
Run: .venv/bin/python benchmarks/joint.py --n 15
"""

from __future__ import annotations

import json
import math
import statistics
import sys

import torch
from joint_tables import (
    TABLES,
    benchmark_arguments,
    benchmark_prompts,
    best_k_set,
    collect,
    greedy_from_table,
    key_of,
    load,
)

from promptxray import attribute, build_problem, load_model

CHECKPOINTS = (10, 20, 30, 42, 60, 100, 150, 202)


def best_at(trajectory: list[list[float]], baseline: float, passes: int) -> float | None:
    """The drop the search had reached once it had scored `passes` prompts."""
    reached = [baseline - best for spent, best in trajectory if spent <= passes]
    return max(reached) if reached else None


def main() -> None:
    args = benchmark_arguments(__doc__.split("\n")[0])
    torch.set_num_threads(args.threads)
    lm = load_model()
    k = args.k
    rows = []
    curves: dict[str, list[list[float | None]]] = {"xprompt": [], "xprompt_paper": []}
    for key, prompt in benchmark_prompts(args.data, args.n, lm, args.max_units):
        stored = TABLES / f"{key}.json"
        if stored.exists():
            table = load(stored)
        else:  # every set of size <= k, scored once and kept (the optimum's ground truth)
            table = collect(lm, key, prompt, k, args.max_new_tokens)
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_text(json.dumps(table), encoding="utf-8")
        problem = build_problem(lm, prompt, max_new_tokens=args.max_new_tokens)
        if list(problem.target_ids) != table["target_ids"] or table["k"] != k:
            sys.exit(f"{stored} was made for another y or k; delete it to recompute.")
        baseline = table["baseline"]
        best_set, optimum = best_k_set(table)
        n = len(table["units"])
        singles = sorted(range(n), key=lambda u: (table["values"][str(u)], u))
        loo_set = frozenset(singles[:k])
        greedy_set, greedy_passes = greedy_from_table(table)
        ours = attribute(lm, problem, "xprompt", "word", k=k)
        paper = attribute(lm, problem, "xprompt_paper", "word", k=k, masking="delete")
        double = attribute(lm, problem, "xprompt", "word", k=k, budget=4 * (n + 1))
        tenth = attribute(lm, problem, "xprompt", "word", k=k, budget=paper.metadata["spent"] // 10)
        for attr in (ours, double, tenth):  # the model and the table agree on what was found
            found = frozenset(attr.selected)
            assert abs(attr.metadata["objective"] - table["values"][key_of(found)]) < 1e-3
        row = {
            "prompt": key,
            "units": n,
            "optimum": optimum,
            "loo_drop": baseline - table["values"][key_of(loo_set)],
            "loo_passes": n + 2,
            "greedy_drop": baseline - table["values"][key_of(greedy_set)],
            "greedy_passes": greedy_passes,
            "xprompt_drop": ours.metadata["log_prob_drop"],
            "xprompt_passes": ours.metadata["spent"],
            "xprompt_seconds": ours.metadata["seconds"],
            "double_drop": double.metadata["log_prob_drop"],
            "double_passes": double.metadata["spent"],
            "tenth_drop": tenth.metadata["log_prob_drop"],
            "tenth_passes": tenth.metadata["spent"],
            "paper_drop": paper.metadata["log_prob_drop"],
            "paper_passes": paper.metadata["spent"],
            "paper_seconds": paper.metadata["seconds"],
            "exhaustive_passes": 1 + math.comb(n, k),
            "exhaustive_seconds": table["seconds"] * math.comb(n, k) / len(table["values"]),
        }
        rows.append(row)
        for name, attr in (("xprompt", ours), ("xprompt_paper", paper)):
            traj = attr.metadata["trajectory"]
            curves[name].append(
                [
                    None if (d := best_at(traj, baseline, c)) is None else d / optimum
                    for c in CHECKPOINTS
                ]
            )
        print(
            f"{key}: n={n} optimum {optimum:.2f} | loo {row['loo_drop']:.2f} | greedy "
            f"{row['greedy_drop']:.2f} | xprompt {row['xprompt_drop']:.2f} "
            f"({row['xprompt_passes']}) | 4(n+1) {row['double_drop']:.2f} "
            f"({row['double_passes']}) | tenth {row['tenth_drop']:.2f} ({row['tenth_passes']}) "
            f"| paper {row['paper_drop']:.2f} ({row['paper_passes']})",
            file=sys.stderr,
        )

    def at_optimum(name: str) -> int:
        return sum(r[f"{name}_drop"] >= r["optimum"] - 1e-3 for r in rows)

    def gap(name: str) -> float:
        return statistics.median(1 - r[f"{name}_drop"] / r["optimum"] for r in rows)

    def passes(name: str) -> float:
        return statistics.median(r[f"{name}_passes"] for r in rows)

    print(
        f"\n{len(rows)} prompts (<= {args.max_units} word units), k = {k}, delete masking, "
        f"y = greedy output of <= {args.max_new_tokens} tokens, {args.threads} torch thread(s)\n"
    )
    print("| search | reaches the optimum | median gap to optimum | median passes |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in (
        ("loo", "leave-one-out top-k"),
        ("greedy", "greedy (all candidates)"),
        ("xprompt", "xprompt (default budget)"),
        ("double", "xprompt (budget 4 (n + 1))"),
        ("tenth", "xprompt (a tenth of the paper's passes)"),
        ("paper", "xprompt_paper (200 iterations)"),
    ):
        print(
            f"| {label} | {at_optimum(name)}/{len(rows)} | {gap(name):.1%} | {passes(name):.0f} |"
        )
    print(f"| exhaustive | {len(rows)}/{len(rows)} | 0.0% | {passes('exhaustive'):.0f} |")
    as_good = sum(r["tenth_drop"] >= r["paper_drop"] - 1e-3 for r in rows)
    print(
        f"\nxprompt with a tenth of the paper's passes removes at least as much log p(y) as "
        f"xprompt_paper on {as_good}/{len(rows)} prompts (PR is exp of the drop per token)."
    )
    print("\nShare of the optimum's drop reached after P passes (median over prompts):\n")
    print("| search | " + " | ".join(f"P={c}" for c in CHECKPOINTS) + " |")
    print("| --- |" + " ---: |" * len(CHECKPOINTS))
    for name, table in curves.items():
        cells = []
        for j in range(len(CHECKPOINTS)):
            values = [row[j] for row in table if row[j] is not None]
            cells.append(f"{statistics.median(values):.0%}" if values else "–")
        print(f"| {name} | " + " | ".join(cells) + " |")
    secs = {
        name: statistics.median(r[f"{name}_seconds"] for r in rows)
        for name in ("xprompt", "paper", "exhaustive")
    }
    print(
        "\nmedian seconds: "
        + ", ".join(f"{name} {value:.2f}" for name, value in secs.items())
        + f"; optimum drops: median {statistics.median(r['optimum'] for r in rows):.2f} nats"
    )
    if not all(math.isfinite(r["optimum"]) for r in rows):
        print("warning: a non-finite optimum", file=sys.stderr)


if __name__ == "__main__":
    main()
