"""Benchmark of the faithfulness check every result carries (issue 28's goals), default model.

Prompts: from each shared set (../shared/data/{instructions,counseling}.jsonl), those of
20-200 words sorted by length and taken at N evenly spaced ranks (a spread of lengths),
in file order. The target is the model's greedy output (at most --max-new-tokens).
Word units, k = 3, the check's defaults (R = 8 random 3-sets, R' = 8 half-ablations).

a. Cost, for grad_norm and leave_one_out: the check's seconds as a multiple of the
   explanation it checks (`record.cost.seconds`), its forward passes (sequences), and its
   time against the bound: the same variants scored alone (`check.plan_check` and
   `quantity.score_rows`, one prefix-sharing batched run), timed interleaved with the check
   in this process (--reps times each, order alternating, the fastest of each kept).
   Goal: check / bound <= 1.2.
b. Rank agreement, for random, grad_norm, grad_x_input, leave_one_out and xprompt: each
   method's mean check deletion ratio against its mean evaluation PR
   (`FaithfulnessScorer(...).score(ranking, k=3).pr`, the same k and masking), their
   Spearman correlation across the methods, the share of prompts where the check calls
   random "faithful" (goal: under 5%), and stability: the check rerun with seed 1 (other
   random sets and ablations) and how often its verdict's label (the words before ":")
   changes. At the same k, ranking and masking the deletion ratio is the evaluation's PR
   (the same masked prompt, scored the same way), so that correlation checks the one
   mask-and-measure path; the verdict's own agreement is the share called faithful
   against -PR, printed beside it.

Defaults: k = 3 (the evaluation's and the check's), the check's own R and R'; a 32-token
output (the evaluation's 64 would double the scoring for the same comparison); the PR's
regeneration is one token (the text metrics are not read). Timing: one torch thread.

Before the run it prints its prediction (every method's and check's passes from the
library's own estimate, seconds from one measured forward, generation from the first
prompt's) and at the end the time it took.

    .venv/bin/python benchmarks/check.py [--n 30] [--sets instructions counseling]
        [--reps 2] [--max-new-tokens 32] [--json FILE] [--predict-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from promptxray import attribute, build_problem, load_model
from promptxray.api import check_request, check_result, estimate
from promptxray.check import check_cost, check_explanation, plan_check
from promptxray.evaluation.metrics import FaithfulnessScorer, aopc_ks
from promptxray.masking import keep_only, mask_context
from promptxray.methods import quantity
from promptxray.methods.costs import seconds_for, seconds_per_token
from promptxray.pipeline import CHECK_BATCH, REUSES_UNMASKED

METHODS = ("random", "grad_norm", "grad_x_input", "leave_one_out", "xprompt")
COST_METHODS = ("grad_norm", "leave_one_out")
K = 3
WORDS = (20, 200)


def data_dir() -> Path | None:
    """../shared/data from the repository (or a worktree of it) up."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return None


def choose_prompts(path: Path, n: int) -> list[tuple[str, str]]:
    """(id, prompt) of n prompts of 20-200 words at evenly spaced length ranks, file order."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    fit = [(i, r) for i, r in enumerate(rows) if WORDS[0] <= len(r["prompt"].split()) <= WORDS[1]]
    by_length = sorted(fit, key=lambda item: (len(item[1]["prompt"].split()), item[0]))
    if n >= len(by_length):
        picked = by_length
    else:
        step = (len(by_length) - 1) / max(1, n - 1)
        picked = [by_length[round(j * step)] for j in range(n)] if n > 1 else [by_length[0]]
    return [(r.get("id", str(i)), r["prompt"]) for i, r in sorted(picked, key=lambda x: x[0])]


def label(verdict: str) -> str:
    """The verdict's label: "faithful", "partly faithful", "no better than random", ..."""
    return verdict.split(":", 1)[0]


# ----- the prediction ----------------------------------------------------------------
def predict(lm, prompts: list[tuple[str, bool]], max_new_tokens: int, reps: int) -> dict:
    """Predicted seconds of each part of the run, before anything runs (`prompts`: each
    prompt and whether the cost section times it).

    Every method's passes (its check included) from `api.estimate`, on a placeholder
    target of max_new_tokens tokens (the longest the output can be); the seed-1 rerun,
    the cost section's timed checks and bounds, and the evaluation's scoring counted the
    same way; seconds from one measured forward. Generation: the first prompt's, timed.
    """
    started = time.perf_counter()
    build_problem(lm, prompts[0][0], max_new_tokens=max_new_tokens)
    parts = {"generation": (time.perf_counter() - started) * len(prompts)}
    parts.update({"methods and their checks": 0.0, "seed-1 checks": 0.0, "PR scoring": 0.0})
    parts["cost timing"] = 0.0
    filler = lm.tokenizer.encode(" the", add_special_tokens=False)[0]
    placeholder = [filler] * max_new_tokens
    middle = sorted((p for p, _ in prompts), key=len)[len(prompts) // 2]
    rate = seconds_per_token(lm, build_problem(lm, middle, output_ids=placeholder))
    for prompt, timed in prompts:
        problem = build_problem(lm, prompt, output_ids=placeholder)
        units = problem.units("word")
        ranking = list(range(len(units)))
        plan = plan_check(lm, problem, units, ranking, k=K)
        one_check = seconds_for(check_cost(lm, problem, plan, CHECK_BATCH), rate)
        for method in METHODS:
            request = check_request(method, "word", check_k=K)
            predicted = estimate(lm, problem, request, per_token=rate)
            parts["methods and their checks"] += predicted.seconds
            parts["seed-1 checks"] += one_check
            if timed and method in COST_METHODS:
                parts["cost timing"] += 2 * reps * one_check  # the timed checks and bounds
        variants = [mask_context(lm, problem, units, ranking[:K])]  # PR, and y' (one token)
        variants += [mask_context(lm, problem, units, ranking[:j]) for j in aopc_ks(len(units))]
        variants += [keep_only(lm, problem, units, ranking[:j]) for j in aopc_ks(len(units))]
        scoring = quantity.rows_cost(lm, problem, variants + variants[:1], CHECK_BATCH)
        parts["PR scoring"] += len(METHODS) * seconds_for(scoring, rate) + rate * len(problem.ids)
    return parts


# ----- the measurements --------------------------------------------------------------
def timed_bound(lm, problem, attribution) -> float:
    """Seconds to plan and score the check's variants alone (no verdict, no LDS)."""
    started = time.perf_counter()
    known = attribution.method in REUSES_UNMASKED
    ranking = attribution.ranking("support")
    plan = plan_check(lm, problem, attribution.units, ranking, k=K, full_known=known)
    with lm.lock, torch.no_grad():
        quantity.score_rows(lm, problem, plan.variants, CHECK_BATCH, reference=plan.full)
    return time.perf_counter() - started


def cost_row(lm, problem, attribution, reps: int) -> dict:
    """The check against the explanation it checks, and against its bound."""
    check = attribution.record.check
    checks, bounds = [check.seconds], []
    for rep in range(reps):
        order = ("check", "bound") if rep % 2 == 0 else ("bound", "check")
        for what in order:
            if what == "check":
                checks.append(check_result(lm, problem, attribution, k=K).seconds)
            else:
                bounds.append(timed_bound(lm, problem, attribution))
    return {
        "explanation_s": attribution.record.cost.seconds,
        "check_s": min(checks),
        "check_passes": check.forward_passes,
        "bound_s": min(bounds),
        "multiple": min(checks) / attribution.record.cost.seconds,
        "check_over_bound": min(checks) / min(bounds),
    }


def prompt_rows(lm, set_name: str, key: str, prompt: str, args, timed: bool) -> list[dict]:
    problem = build_problem(lm, prompt, max_new_tokens=args.max_new_tokens)
    scorer = None
    rows = []
    for method in METHODS:
        attribution = attribute(lm, problem, method, "word", check_k=K)
        check = attribution.record.check
        if scorer is None:
            # PR scores y under the masked prompt; the regeneration (text metrics) is not
            # read here, so one token of it suffices.
            scorer = FaithfulnessScorer(
                lm, problem, attribution.units, max_new_tokens=1, use_sbert=False
            )
        pr = scorer.score(attribution.ranking("support"), k=K).pr
        params = attribution.record.provenance.params
        again = check_explanation(
            lm,
            problem,
            attribution.units,
            attribution.scores,
            attribution.ranking("support"),
            granularity="word",
            k=K,
            operator=str(params.get("masking", "delete")),
            seed=1,
            batch_size=CHECK_BATCH,
        )
        row = {
            "set": set_name,
            "prompt": key,
            "words": len(attribution.units),
            "tokens": len(problem.ids),
            "method": method,
            "pr": pr,
            "deletion_ratio": check.deletion_ratio,
            "beats_random": check.beats_random,
            "sufficiency_ratio": check.sufficiency_ratio,
            "lds": check.lds,
            "faithful": check.faithful,
            "verdict": check.verdict,
            "verdict_seed1": again.verdict,
            "label_changed": label(check.verdict) != label(again.verdict),
        }
        if timed and method in COST_METHODS:
            row.update(cost_row(lm, problem, attribution, args.reps))
        rows.append(row)
    return rows


# ----- the report --------------------------------------------------------------------
def mean(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else float("nan")


def report(rows: list[dict], sets: list[str]) -> dict:
    med = statistics.median
    print("\n## a. Cost of the check (word units, k = 3, R = 8, R' = 8; medians over prompts)\n")
    print(
        "| set | method | n | explanation s | check s | check / explanation | check passes "
        "| bound s | check / bound | worst check / bound |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in sets:
        for method in COST_METHODS:
            mine = [r for r in rows if r["set"] == s and r["method"] == method and "bound_s" in r]
            if not mine:
                continue
            print(
                f"| {s} | {method} | {len(mine)} | {med(r['explanation_s'] for r in mine):.2f} | "
                f"{med(r['check_s'] for r in mine):.2f} | "
                f"{med(r['multiple'] for r in mine):.2f}× | "
                f"{med(r['check_passes'] for r in mine):.0f} | "
                f"{med(r['bound_s'] for r in mine):.2f} | "
                f"{med(r['check_over_bound'] for r in mine):.2f} | "
                f"{max(r['check_over_bound'] for r in mine):.2f} |"
            )
    print("\n## b. Does the check rank the methods as the evaluation does? (k = 3)\n")
    print(
        "| set | method | n | mean check deletion ratio | mean eval PR | share faithful "
        "| mean LDS | label changes with seed 1 |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    summary: dict = {}
    for s in sets:
        means = []
        for method in METHODS:
            mine = [r for r in rows if r["set"] == s and r["method"] == method]
            if not mine:
                continue
            deletion, pr = mean(r["deletion_ratio"] for r in mine), mean(r["pr"] for r in mine)
            faithful = mean(float(r["faithful"]) for r in mine if r["faithful"] is not None)
            changed = mean(float(r["label_changed"]) for r in mine)
            means.append((deletion, pr))
            summary.setdefault(s, {})[method] = {
                "n": len(mine),
                "deletion_ratio": deletion,
                "pr": pr,
                "faithful": faithful,
                "lds": mean(r["lds"] for r in mine),
                "label_changed": changed,
            }
            print(
                f"| {s} | {method} | {len(mine)} | {deletion:.3f} | {pr:.3f} | "
                f"{100 * faithful:.0f}% | {summary[s][method]['lds']:+.2f} | {100 * changed:.0f}% |"
            )
        if len(means) >= 3:
            table = summary[s]
            names = [m for m in METHODS if m in table]
            prs = [table[m]["pr"] for m in names]
            rho = spearmanr([m[0] for m in means], prs).statistic
            table["spearman"] = float(rho)
            # The verdict itself: a method called faithful more often should have a lower PR.
            verdict_rho = spearmanr([table[m]["faithful"] for m in names], [-p for p in prs])
            table["spearman_faithful_vs_pr"] = float(verdict_rho.statistic)
    print()
    for s in sets:
        if s not in summary:
            continue
        random_share = summary[s].get("random", {}).get("faithful", float("nan"))
        rho = summary[s].get("spearman", float("nan"))
        changed = mean(r["label_changed"] for r in rows if r["set"] == s)
        gap = max(abs(r["deletion_ratio"] - r["pr"]) for r in rows if r["set"] == s)
        verdict_rho = summary[s].get("spearman_faithful_vs_pr", float("nan"))
        print(
            f"- {s}: Spearman(mean check deletion ratio, mean eval PR) across "
            f"{len(METHODS)} methods = {rho:+.2f}; random called faithful on "
            f"{100 * random_share:.1f}% of prompts (goal < 5%); the verdict's label changes "
            f"with seed 1 on {100 * changed:.0f}% of (prompt, method) pairs. The deletion "
            f"ratio is the PR at the same k and masking (largest difference {gap:.1e}); the "
            f"verdict's share faithful against -PR: Spearman {verdict_rho:+.2f}."
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="prompts per set")
    parser.add_argument("--sets", nargs="+", default=["instructions", "counseling"])
    parser.add_argument("--reps", type=int, default=2, help="timed check/bound pairs per row")
    parser.add_argument(
        "--cost-n", type=int, default=10, help="prompts per set the cost section times"
    )
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--data", type=Path, default=data_dir(), help="the shared data folder")
    parser.add_argument("--json", help="also write the rows and the summary to this file")
    parser.add_argument(
        "--predict-only", action="store_true", help="print the predicted time and stop"
    )
    args = parser.parse_args()
    if args.n < 1 or args.reps < 1 or args.cost_n < 0:
        parser.error("--n and --reps must be at least 1, --cost-n at least 0")
    if args.data is None or not args.data.is_dir():
        sys.exit("The shared data folder was not found: give --data DIR.")
    torch.set_num_threads(1)
    lm = load_model()
    chosen = {s: choose_prompts(args.data / f"{s}.jsonl", args.n) for s in args.sets}
    everything = [
        (prompt, j < args.cost_n)
        for prompts in chosen.values()
        for j, (_, prompt) in enumerate(prompts)
    ]
    parts = predict(lm, everything, args.max_new_tokens, args.reps)
    predicted = sum(parts.values())
    print(
        f"{len(everything)} prompts ({', '.join(f'{len(v)} {s}' for s, v in chosen.items())}), "
        f"{len(METHODS)} methods, the cost section on the first {args.cost_n} of each set, "
        f"1 torch thread. Predicted: about {predicted / 60:.0f} min ("
        + ", ".join(f"{name} {seconds / 60:.0f}" for name, seconds in parts.items())
        + "; from the library's estimate, so slower on a busy machine)",
        flush=True,
    )
    if args.predict_only:
        return
    started = time.perf_counter()
    rows: list[dict] = []
    done = 0
    for s, prompts in chosen.items():
        for j, (key, prompt) in enumerate(prompts):
            rows += prompt_rows(lm, s, key, prompt, args, timed=j < args.cost_n)
            done += 1
            elapsed = time.perf_counter() - started
            print(
                f"[{done}/{len(everything)}] {s} {key}: {rows[-1]['words']} words, "
                f"{elapsed / 60:.1f} min so far",
                flush=True,
            )
    took = time.perf_counter() - started
    summary = report(rows, list(chosen))
    print(f"\nTook {took / 60:.1f} min (predicted {predicted / 60:.1f} min).")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "summary": summary}, indent=1), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
