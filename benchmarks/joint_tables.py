"""Every L(S), |S| <= k, for the joint benchmark's prompts: the ground truth it measures against.

The optimum of L(S) = log p(y | prompt without S) over k-sets is fixed by the
prompt, the model and y; computing it (every k-set scored) costs 10-30x more
than all the searches together. So it is computed once per prompt and kept in
`benchmarks/data/joint/<prompt id>.json` with every set of size 1..k, the unit
gradient and the context needed to check the file still applies (model, y,
units). `benchmarks/joint.py` reads these files; `replay()` runs xprompt's search
(`replay_v2` the previous one, `replay_paper` the paper's) on a table instead of the
model: the same sets, values and counting, so every search is measured on every
prompt in seconds (joint.py confirms the new search on the model).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/joint_tables.py --n 15
(the three prompt sets of joint.py: `--n 15`; `--skip 15 --n 10`; `--min-units 21
--max-units 30 --n 15`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

from promptxray import build_problem, load_model
from promptxray.methods.joint_objective import BudgetSpent, Objective, unit_gradient
from promptxray.methods.joint_schedule import run_schedule
from promptxray.methods.joint_search import XPromptParams

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "instructions.jsonl"
TABLES = HERE / "data" / "joint"


def key_of(s) -> str:
    return ",".join(str(u) for u in sorted(s))


def benchmark_prompts(
    path: Path, n: int, lm, max_units: int, min_units: int = 1, skip: int = 0
) -> list[tuple[str, str]]:
    """The prompts with min_units..max_units word units (file order): the first `skip` of
    them passed over, then the next n."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        problem = build_problem(lm, row["prompt"], target=" x")
        if min_units <= len(problem.units("word")) <= max_units:
            out.append((row["id"], row["prompt"]))
        if len(out) == skip + n:
            break
    return out[skip:]


def collect(lm, key_: str, prompt: str, k: int, max_new_tokens: int) -> dict:
    problem = build_problem(lm, prompt, max_new_tokens=max_new_tokens)
    units = problem.units("word")
    n = len(units)
    objective = Objective(lm, problem, units, "delete", 16, k)
    started = time.perf_counter()
    (baseline,) = objective([frozenset()])
    sets = [
        frozenset(c) for size in range(1, k + 1) for c in itertools.combinations(range(n), size)
    ]
    values = objective(sets, reference=frozenset())
    return {
        "prompt_id": key_,
        "prompt": prompt,
        "model": lm.name,
        "k": k,
        "masking": "delete",
        "max_new_tokens": max_new_tokens,
        "target_ids": list(problem.target_ids),
        "units": [u.text for u in units],
        "baseline": baseline,
        "gradient": unit_gradient(lm, problem, units).tolist(),
        "values": {key_of(s): v for s, v in zip(sets, values, strict=True)},
        "seconds": time.perf_counter() - started,
    }


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def load_all(k: int = 3) -> list[dict]:
    """Every stored table for this k, in file order of the prompts."""
    return [t for p in sorted(TABLES.glob("*.json")) if (t := load(p))["k"] == k]


def best_k_set(table: dict) -> tuple[frozenset[int], float]:
    """The best k-set and its drop in log p(y)."""
    k = table["k"]
    best = min((v, s) for s, v in table["values"].items() if s.count(",") == k - 1)
    return frozenset(int(u) for u in best[1].split(",")), table["baseline"] - best[0]


def greedy_from_table(table: dict) -> tuple[frozenset[int], int]:
    """Plain forward selection, every unit a candidate in every round: (set, prompts scored)."""
    n, k, values = len(table["units"]), table["k"], table["values"]
    chosen: frozenset[int] = frozenset()
    passes = 1  # the unmasked prompt
    for _ in range(k):
        candidates = [u for u in range(n) if u not in chosen]
        passes += len(candidates)
        chosen = min(
            (chosen | {u} for u in candidates), key=lambda s: (values[key_of(s)], sorted(s))
        )
    return chosen, passes


class TableObjective(Objective):
    """An Objective that looks L(S) up in a stored table instead of running the model.

    Counting, memo and budget are the real Objective's, so a search replayed on a
    table spends exactly what it would spend on the model.
    """

    def __init__(self, table: dict, budget: int | None) -> None:
        self.table = table
        self.masking, self.batch_size, self.k, self.budget = "delete", 16, table["k"], budget
        self.memo = True
        self.known = {}
        self.spent = 0
        self.best = float("inf")
        self.trajectory = []

    def __call__(self, sets, reference=None):
        new = self.unknown(sets)
        if len(new) > self.left:
            raise BudgetSpent
        for s in new:
            value = self.table["baseline"] if not s else self.table["values"][key_of(s)]
            self.known[s] = value
            if len(s) == self.k:
                self.best = min(self.best, value)
        if new:
            self.spent += len(new)
            self.trajectory.append((self.spent, self.best))
        return [self.known[s] for s in sets]


def replay(table: dict, budget: int | None = None, seed: int = 0) -> tuple[float, list, int]:
    """xprompt's search (v3: the schedule, then the ranking's passes) on a table:
    (the drop it reaches, its trajectory, the prompts it scores)."""
    n, k = len(table["units"]), table["k"]
    objective = TableObjective(table, XPromptParams(k=k, budget=budget).budget_for(n))
    objective([frozenset()])
    cap = objective.budget - 1
    chosen = run_schedule(objective, n, k, table["gradient"], table["baseline"], seed, cap, True)
    objective(objective.fit([chosen - {u} for u in sorted(chosen)]), reference=chosen)
    return table["baseline"] - objective.known[chosen], objective.trajectory, objective.spent


def replay_v2(table: dict, budget: int | None = None, seed: int = 0) -> tuple[float, list, int]:
    """The previous search (v2, `joint_v2`) on a table, the same way."""
    from joint_v2 import V2Params, search

    n, k = len(table["units"]), table["k"]
    objective = TableObjective(table, budget or 2 * (n + 1))
    objective([frozenset()])
    chosen, value, *_ = search(
        objective, n, k, table["gradient"], V2Params(seed=seed), lambda *a: None
    )
    objective(objective.fit([chosen - {u} for u in sorted(chosen)]), reference=chosen)
    return table["baseline"] - value, objective.trajectory, objective.spent


def replay_paper(table: dict, iterations: int = 200, seed: int = 0) -> tuple[float, list, int]:
    """xprompt_paper (Algorithm 1, as `joint_paper` runs it: the same draws from the same
    seed) on a table with its L, i.e. `delete` masking: (drop, trajectory, prompts)."""
    n, k, values = len(table["units"]), table["k"], table["values"]
    g = [abs(v) for v in table["gradient"]]
    chosen = frozenset(sorted(range(n), key=lambda u: (-g[u], u))[:k])
    value, spent = values[key_of(chosen)], 2
    trajectory = [(spent, value)]
    rng, top = random.Random(seed), max(g)
    weight = [math.exp(v - top) for v in g]
    for _ in range(iterations if n > k else 0):
        outside, inside = [u for u in range(n) if u not in chosen], sorted(chosen)
        (add,) = rng.choices(outside, weights=[weight[u] for u in outside])
        (drop,) = rng.choices(inside, weights=[weight[u] for u in inside])
        proposal = (chosen - {drop}) | {add}
        spent += 1
        if values[key_of(proposal)] < value:
            chosen, value = proposal, values[key_of(proposal)]
        trajectory.append((spent, value))
    return table["baseline"] - value, trajectory, spent


def benchmark_arguments(description: str) -> argparse.Namespace:
    """The joint benchmark's settings (both scripts must pick the same prompts and y)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--max-units", type=int, default=20)
    parser.add_argument("--min-units", type=int, default=1)
    parser.add_argument("--skip", type=int, default=0, help="pass over the first SKIP prompts")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--confirm", action="store_true", help="also run xprompt on the model")
    return parser.parse_args()


def main() -> None:
    args = benchmark_arguments(__doc__.split("\n")[0])
    torch.set_num_threads(args.threads)
    lm = load_model()
    TABLES.mkdir(parents=True, exist_ok=True)
    chosen = benchmark_prompts(args.data, args.n, lm, args.max_units, args.min_units, args.skip)
    for key_, prompt in chosen:
        out = TABLES / f"{key_}.json"
        if out.exists():
            continue
        table = collect(lm, key_, prompt, args.k, args.max_new_tokens)
        out.write_text(json.dumps(table), encoding="utf-8")
        print(
            f"{key_}: n={len(table['units'])} {table['seconds']:.0f} s", file=sys.stderr, flush=True
        )


if __name__ == "__main__":
    main()
