"""Benchmark of joint attribution against the exhaustive optimum.

On prompts of ../shared/data/instructions.jsonl (file order, selected by their
number of word units), with the model's own greedy output as y (word units, k = 3,
`delete` masking), the optimum of

    L(S) = log p(y | prompt without the units of S),  |S| = k

comes from a table of every set of size <= k scored once (`joint_tables.py`, kept in
benchmarks/data/joint/, computed here when missing: the only expensive part). Every
search is then replayed on the table (same sets, same values, same counting of
passes: a pass is one masked prompt scored, the unmasked one included, the gradient
not), so old and new compare on exactly the same L:

- leave-one-out's top k; greedy forward selection, every unit a candidate each round;
- xprompt v3 (this version's anytime schedule) at the default budget 2 (n + 1) and at
  4 (n + 1); xprompt v2 (the previous search, `joint_v2.py`) at both;
- xprompt_paper: Algorithm 1 as published, 200 iterations, with `delete` masking
  here (not the paper's zero embeddings) so every search minimises the same L.

Then the share of the optimum's drop each search has reached after P passes (median
over prompts), and whether v3's median is at least the paper's at every P up to 202.
`--confirm` also runs v3 on the model at the default budget and checks it finds the
replayed set (and times it).

The three prompt sets: the 15 benchmark prompts (`--n 15`, <= 20 units), the next 10
the project had not seen (`--skip 15 --n 10`), 15 of 21-30 units
(`--min-units 21 --max-units 30 --n 15`).
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/joint.py --n 15
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
    key_of,
    load,
    replay,
    replay_paper,
    replay_v2,
)

from promptxray import attribute, build_problem, load_model

CHECKPOINTS = (5, 10, 15, 20, 30, 42, 60, 100, 150, 202)
CURVES = ("xprompt v3", "xprompt v2", "xprompt_paper", "greedy")


def best_at(trajectory: list, baseline: float, passes: int) -> float | None:
    """The drop the search had reached once it had scored `passes` prompts."""
    reached = [baseline - best for spent, best in trajectory if spent <= passes]
    reached = [d for d in reached if math.isfinite(d)]
    return max(reached) if reached else None


def greedy_run(table: dict) -> tuple[float, list, int]:
    """Forward selection on the table, every unit a candidate in every round; its
    trajectory (best k-set so far) starts with the last round, the first with k-sets."""
    n, k, values = len(table["units"]), table["k"], table["values"]
    chosen: frozenset[int] = frozenset()
    spent, trajectory, best = 1, [], math.inf
    for r in range(k):
        options = []
        for u in (u for u in range(n) if u not in chosen):
            spent += 1
            s = chosen | {u}
            options.append((values[key_of(s)], sorted(s), s))
            if r == k - 1:
                best = min(best, values[key_of(s)])
                trajectory.append((spent, best))
        chosen = min(options)[2]
    return table["baseline"] - values[key_of(chosen)], trajectory, spent


def table_for(lm, key: str, prompt: str, args) -> dict:
    stored = TABLES / f"{key}.json"
    if stored.exists():
        table = load(stored)
    else:  # every set of size <= k, scored once and kept (the optimum's ground truth)
        table = collect(lm, key, prompt, args.k, args.max_new_tokens)
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_text(json.dumps(table), encoding="utf-8")
    if table["k"] != args.k:
        sys.exit(f"{stored} was made for another k; delete it to recompute.")
    return table


def main() -> None:
    args = benchmark_arguments(__doc__.split("\n")[0])
    torch.set_num_threads(args.threads)
    lm = load_model()
    k = args.k
    rows = []
    curves: dict[str, list[list[float | None]]] = {name: [] for name in CURVES}
    chosen = benchmark_prompts(args.data, args.n, lm, args.max_units, args.min_units, args.skip)
    for key, prompt in chosen:
        table = table_for(lm, key, prompt, args)
        baseline, n = table["baseline"], len(table["units"])
        _, optimum = best_k_set(table)
        singles = sorted(range(n), key=lambda u: (table["values"][str(u)], u))
        runs = {
            "loo": (baseline - table["values"][key_of(singles[:k])], [], n + 2),
            "greedy": greedy_run(table),
            "v3": replay(table),
            "v3_double": replay(table, budget=4 * (n + 1)),
            "v2": replay_v2(table),
            "v2_double": replay_v2(table, budget=4 * (n + 1)),
            "paper": replay_paper(table),
        }
        row = {"prompt": key, "units": n, "optimum": optimum}
        for name, (drop, _, spent) in runs.items():
            row[f"{name}_drop"], row[f"{name}_passes"] = drop, spent
        if args.confirm:  # the model finds what the replay found
            problem = build_problem(lm, prompt, max_new_tokens=args.max_new_tokens)
            assert list(problem.target_ids) == table["target_ids"], f"{key}: another y"
            real = attribute(lm, problem, "xprompt", "word", k=k, check=False)
            assert abs(real.metadata["log_prob_drop"] - row["v3_drop"]) < 1e-3, key
            row["v3_seconds"] = real.metadata["seconds"]
        rows.append(row)
        # v3's curve from a budget past the last checkpoint: a budget only truncates it.
        long_run = replay(table, budget=CHECKPOINTS[-1])[1]
        for name, run in zip(CURVES, ("v3", "v2", "paper", "greedy"), strict=True):
            trajectory = long_run if run == "v3" else runs[run][1]
            curves[name].append(
                [
                    None if (d := best_at(trajectory, baseline, c)) is None else d / optimum
                    for c in CHECKPOINTS
                ]
            )
        print(
            f"{key}: n={n} optimum {optimum:.2f} | "
            + " | ".join(f"{m} {row[f'{m}_drop']:.2f} ({row[f'{m}_passes']})" for m in runs),
            file=sys.stderr,
            flush=True,
        )
    report(rows, curves, args)


def report(rows: list[dict], curves: dict, args) -> None:
    def at_optimum(name: str) -> int:
        return sum(r[f"{name}_drop"] >= r["optimum"] - 1e-3 for r in rows)

    def gap(name: str) -> float:
        return statistics.median(1 - r[f"{name}_drop"] / r["optimum"] for r in rows)

    def passes(name: str) -> float:
        return statistics.median(r[f"{name}_passes"] for r in rows)

    units = f"{args.min_units}-{args.max_units}"
    print(
        f"\n{len(rows)} prompts ({units} word units, first {args.skip} passed over), k = "
        f"{args.k}, delete masking, y = greedy output of <= {args.max_new_tokens} tokens\n"
    )
    print("| search | reaches the optimum | median gap to optimum | median passes |")
    print("| --- | ---: | ---: | ---: |")
    for name, label in (
        ("loo", "leave-one-out top-k"),
        ("greedy", "greedy (all candidates)"),
        ("v3", "xprompt v3 (default budget 2 (n + 1))"),
        ("v3_double", "xprompt v3 (budget 4 (n + 1))"),
        ("v2", "xprompt v2 (default budget)"),
        ("v2_double", "xprompt v2 (budget 4 (n + 1))"),
        ("paper", "xprompt_paper (200 iterations)"),
    ):
        hits = f"{at_optimum(name)}/{len(rows)}"
        print(f"| {label} | {hits} | {gap(name):.1%} | {passes(name):.0f} |")
    print("\nShare of the optimum's drop reached after P passes (median over prompts):\n")
    print("| search | " + " | ".join(f"P={c}" for c in CHECKPOINTS) + " |")
    print("| --- |" + " ---: |" * len(CHECKPOINTS))
    medians = {}
    for name, table in curves.items():
        medians[name] = []
        for j in range(len(CHECKPOINTS)):
            values = [0.0 if row[j] is None else row[j] for row in table]
            medians[name].append(statistics.median(values))
        print(f"| {name} | " + " | ".join(f"{m:.0%}" for m in medians[name]) + " |")
    pairs = zip(CHECKPOINTS, medians["xprompt v3"], medians["xprompt_paper"], strict=True)
    behind = [c for c, ours, paper in pairs if ours < paper - 1e-9]
    print(f"\nxprompt v3's median behind the paper's at: {behind or 'no checkpoint'}")
    if any("v3_seconds" in r for r in rows):
        secs = statistics.median(r["v3_seconds"] for r in rows if "v3_seconds" in r)
        print(f"median seconds of xprompt v3 on the model (default budget): {secs:.2f}")


if __name__ == "__main__":
    main()
