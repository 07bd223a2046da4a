"""context_cite against leave_one_out and grad_norm (issue 30's goals), default model, word units.

Prompts: the shared sets (../shared/data/{instructions,counseling}.jsonl), which the
project has not tuned on. The target is the model's greedy output (at most
--max-new-tokens), generated once per prompt and teacher-forced for every method.

a. Agreement on held-out ablations: per set, --n prompts of 20-100 words at evenly spaced
   length ranks. For each prompt, --lds-ablations random half-ablations drawn exactly as
   the faithfulness check draws its LDS ablations (`check.plan_check`: seeded by the
   prompt under the check's label, so never the ones context_cite fitted) are scored
   once; each method's LDS is the check's (`ablation_sets.lds`: Spearman of the summed
   scores of the dropped words against the drop in log p(target)) on those same
   ablations. Reported: the median per method and set, context_cite's own out-of-fold
   LDS beside it, and forward passes. Goal: context_cite's median >= leave_one_out's.
b. Deletion on long prompts: --long prompts of more than 100 words (both sets, evenly
   spaced lengths). For context_cite and leave_one_out, the top 3 words by support are
   deleted (`ablation.ablate`, the evaluation's PR: per-token geometric mean of the
   probability ratio). Reported: mean PR of each, the paired mean difference with its
   95% bootstrap interval (`intervals.mean_interval`), mean forward passes. Goal: PR
   within 0.02 of leave_one_out's at fewer passes.
c. Re-targeting: for every context_cite result above, the second half of its target is
   explained again from the kept ablations (`api.retarget`), --reps times; the fastest
   of each prompt is kept. Reported: median and maximum over prompts (goal < 50 ms).

One torch thread. Prints as it goes; --json FILE writes every number.

    .venv/bin/python benchmarks/context_cite.py [--n 20] [--long 20]
        [--sets instructions counseling] [--ablations 64] [--lds-ablations 32]
        [--max-new-tokens 32] [--reps 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from promptxray import api, attribute, build_problem, load_model
from promptxray.ablation import ablate, reference
from promptxray.ablation_sets import lds
from promptxray.check import plan_check
from promptxray.intervals import mean_interval
from promptxray.masking import mask_context
from promptxray.methods import quantity

SHORT = (20, 100)  # words, section a
LONG_FROM = 101  # words, section b
K = 3


SECTION_A = ("context_cite", "leave_one_out", "grad_norm", "grad_x_input", "attnlrp")


def data_dir() -> Path:
    """../shared/data from the repository (or a worktree of it) up."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    raise SystemExit("no ../shared/data found above this script")


def spread(rows: list[dict], n: int) -> list[dict]:
    """n rows at evenly spaced ranks of length (all when there are fewer), in file order."""
    by_length = sorted(rows, key=lambda r: (len(r["prompt"].split()), r["_line"]))
    if n >= len(by_length):
        return sorted(by_length, key=lambda r: r["_line"])
    step = (len(by_length) - 1) / max(1, n - 1)
    picked = [by_length[round(j * step)] for j in range(n)] if n > 1 else [by_length[0]]
    return sorted(picked, key=lambda r: r["_line"])


def read_set(name: str) -> list[dict]:
    lines = (data_dir() / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [{**r, "_line": i, "_set": name} for i, r in enumerate(rows)]


def words(row: dict) -> int:
    return len(row["prompt"].split())


def held_out_drops(lm, problem, units, count: int) -> tuple[list[list[int]], list[float]]:
    """The check's LDS ablations (`count` of them) and the drop in log p(target) of each."""
    plan = plan_check(lm, problem, units, list(range(len(units))), lds_ablations=count)
    contexts = [plan.full] + [mask_context(lm, problem, units, a) for a in plan.ablations]
    with lm.lock, torch.no_grad():
        rows = quantity.score_rows(lm, problem, contexts, 16, reference=plan.full)
    totals = rows.double().sum(1).tolist()
    return plan.ablations, [totals[0] - t for t in totals[1:]]


def retarget_ms(result, reps: int) -> tuple[float, float]:
    """Fastest of `reps` re-targetings of the second half of the result's target: wall
    and CPU milliseconds (CPU time is what a busy machine does not inflate)."""
    spans = result.record.kept.token_spans
    half = (spans[len(spans) // 2][0], spans[-1][1])
    wall = cpu = float("inf")
    for _ in range(reps):
        started, used = time.perf_counter(), time.process_time()
        api.retarget(result, half)
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - used)
    return 1000 * wall, 1000 * cpu


def section_a(lm, rows: list[dict], args, out: dict) -> None:
    params = {
        "context_cite": {"ablations": args.ablations},
        "leave_one_out": {},
        "grad_norm": {},
        "grad_x_input": {},
        "attnlrp": {},
    }
    for row in rows:
        started = time.perf_counter()
        problem = build_problem(lm, row["prompt"], max_new_tokens=args.max_new_tokens)
        units = problem.units("word")
        ablations, drops = held_out_drops(lm, problem, units, args.lds_ablations)
        item = {"set": row["_set"], "id": row.get("id"), "words": words(row), "units": len(units)}
        for method, given in params.items():
            attr = attribute(lm, problem, method, params=given, check=False)
            item[f"{method}_lds"] = lds(attr.scores, ablations, drops)
            item[f"{method}_passes"] = attr.record.cost.forward_passes
            if method == "context_cite":
                item["context_cite_own_lds"] = attr.record.kept.lds
                item["retarget_ms"], item["retarget_cpu_ms"] = retarget_ms(attr, args.reps)
        item["seconds"] = time.perf_counter() - started
        out["a"].append(item)
        print(json.dumps(item), flush=True)


def section_b(lm, rows: list[dict], args, out: dict) -> None:
    for row in rows:
        problem = build_problem(lm, row["prompt"], max_new_tokens=args.max_new_tokens)
        units = problem.units("word")
        base = reference(lm, problem, "delete")
        item = {"set": row["_set"], "id": row.get("id"), "words": words(row), "units": len(units)}
        for method, given in (
            ("context_cite", {"ablations": args.ablations}),
            ("leave_one_out", {}),
        ):
            attr = attribute(lm, problem, method, params=given, check=False)
            top = attr.ranking("support")[:K]
            item[f"{method}_pr"] = ablate(lm, problem, units, top, "delete", baseline=base).pr
            item[f"{method}_passes"] = attr.record.cost.forward_passes
            if method == "context_cite":
                item["retarget_ms"], item["retarget_cpu_ms"] = retarget_ms(attr, args.reps)
        out["b"].append(item)
        print(json.dumps(item), flush=True)


def median(values: list) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def summary(out: dict) -> dict:
    found: dict = {"a": {}, "b": {}, "c": {}}
    for name in sorted({item["set"] for item in out["a"]}):
        items = [i for i in out["a"] if i["set"] == name]
        found["a"][name] = {
            "prompts": len(items),
            **{f"median {m} LDS": median([i[f"{m}_lds"] for i in items]) for m in SECTION_A},
            "median context_cite out-of-fold LDS": median(
                [i["context_cite_own_lds"] for i in items]
            ),
            **{
                f"mean {m} passes": statistics.mean(i[f"{m}_passes"] for i in items)
                for m in SECTION_A
            },
        }
    if out["b"]:
        diffs = [i["context_cite_pr"] - i["leave_one_out_pr"] for i in out["b"]]
        mean, low, high = mean_interval(diffs)
        found["b"] = {
            "prompts": len(out["b"]),
            "mean words": statistics.mean(i["words"] for i in out["b"]),
            "mean context_cite PR": statistics.mean(i["context_cite_pr"] for i in out["b"]),
            "mean leave_one_out PR": statistics.mean(i["leave_one_out_pr"] for i in out["b"]),
            "paired mean PR difference (cc - loo)": [mean, low, high],
            "mean context_cite passes": statistics.mean(i["context_cite_passes"] for i in out["b"]),
            "mean leave_one_out passes": statistics.mean(
                i["leave_one_out_passes"] for i in out["b"]
            ),
        }
    times = [i["retarget_ms"] for i in out["a"] + out["b"]]
    cpu = [i["retarget_cpu_ms"] for i in out["a"] + out["b"]]
    if times:
        found["c"] = {
            "results": len(times),
            "median ms": median(times),
            "max ms": max(times),
            "median CPU ms": median(cpu),
            "max CPU ms": max(cpu),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="section a prompts per set")
    parser.add_argument("--long", type=int, default=20, help="section b prompts (both sets)")
    parser.add_argument("--sets", nargs="+", default=["instructions", "counseling"])
    parser.add_argument("--ablations", type=int, default=64)
    parser.add_argument("--lds-ablations", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    lm = load_model()
    sets = {name: read_set(name) for name in args.sets}
    short = [
        r
        for rows in sets.values()
        for r in spread([r for r in rows if SHORT[0] <= words(r) <= SHORT[1]], args.n)
    ]
    long_rows = spread(
        [r for rows in sets.values() for r in rows if words(r) >= LONG_FROM], args.long
    )
    out: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "a": [], "b": []}
    print(f"a: {len(short)} prompts of {SHORT[0]}-{SHORT[1]} words; b: {len(long_rows)} of > 100")
    section_a(lm, short, args, out)
    section_b(lm, long_rows, args, out)
    out["summary"] = summary(out)
    out["seconds"] = time.perf_counter() - started
    print(json.dumps(out["summary"], indent=2))
    print(f"took {out['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
