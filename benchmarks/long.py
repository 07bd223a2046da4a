"""Exact vs hierarchical leave-one-out on long prompts (word units, default model).

Long prompts are built from ../shared/data/counseling.jsonl: consecutive forum posts
joined as paragraphs under a one-line instruction until the prompt reaches about
300, 600 or 1,200 words. The target is the model's own 32-token continuation
(generated once, then teacher-forced for both methods). For each prompt: passes
and seconds of exact and hierarchical leave-one-out, and how well hierarchical
finds exact's strongest words (top-5 and top-10 recall by |score|, Spearman over
all words).

    .venv/bin/python benchmarks/long.py [--sizes 300 600 1200] [--prompts 3]
        [--coarse sentence] [--refine 3 4 6] [--top 0] [--first 0] [--json FILE]

Exact leave-one-out runs once per prompt; hierarchical once per --refine value.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from promptxray import attribute, build_problem, load_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "counseling.jsonl"
INSTRUCTION = "Here are messages posted on a counselling forum.\n\n"
QUESTION = "\n\nWhat do these writers have in common? Answer in two sentences."


def long_prompts(words: int, count: int) -> list[str]:
    """`count` prompts of about `words` words, each from its own run of posts."""
    posts = [json.loads(line)["prompt"] for line in DATA.read_text().splitlines() if line]
    prompts, cursor = [], 0
    for _ in range(count):
        chosen: list[str] = []
        while sum(len(p.split()) for p in chosen) < words and cursor < len(posts):
            chosen.append(posts[cursor])
            cursor += 1
        prompts.append(INSTRUCTION + "\n\n".join(chosen) + QUESTION)
    return prompts


def recall(exact: list[float], estimate: list[float], k: int) -> float:
    """Share of exact's k strongest units (by |score|) among the estimate's k strongest."""

    def top(scores: list[float]) -> set[int]:
        return set(sorted(range(len(scores)), key=lambda i: -abs(scores[i]))[:k])

    return len(top(exact) & top(estimate)) / k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 600, 1200])
    parser.add_argument("--prompts", type=int, default=3, help="prompts per size")
    parser.add_argument("--coarse", default="sentence")
    parser.add_argument("--refine", type=int, nargs="+", default=[3, 4, 6])
    parser.add_argument(
        "--top",
        type=int,
        default=0,
        help="0: the fixed rule (only the `refine` strongest); k: the adaptive rule "
        "protecting the top k (benchmarks/hierarchy.py measures that one)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--first", type=int, default=0, help="skip this many prompts of each size (resume a run)"
    )
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if args.first < 0 or args.prompts < 1:
        parser.error("--first must be 0 or more and --prompts 1 or more")
    torch.set_num_threads(1)
    lm = load_model()
    rows = []
    print(
        "| words | tokens | refine | exact passes | hier. passes | fewer | exact s | hier. s | "
        "top-5 | top-10 | Spearman |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in args.sizes:
        for prompt in long_prompts(size, args.first + args.prompts)[args.first :]:
            problem = build_problem(lm, prompt, max_new_tokens=32)
            common = {"batch_size": args.batch_size}
            started = time.perf_counter()
            exact = attribute(lm, problem, "leave_one_out", "word", **common)
            exact_s = time.perf_counter() - started
            for refine in args.refine:
                started = time.perf_counter()
                hier = attribute(
                    lm,
                    problem,
                    "leave_one_out",
                    "word",
                    coarse=args.coarse,
                    refine=refine,
                    top=args.top,
                    **common,
                )
                row = {
                    "size": size,
                    "words": len(prompt.split()),
                    "tokens": len(problem.ids),
                    "units": len(exact.units),
                    "refine": refine,
                    "exact_passes": exact.metadata["forward_passes"],
                    "hier_passes": hier.metadata["forward_passes"],
                    "exact_s": round(exact_s, 1),
                    "hier_s": round(time.perf_counter() - started, 1),
                    "top5": recall(exact.scores, hier.scores, 5),
                    "top10": recall(exact.scores, hier.scores, 10),
                    "spearman": float(spearmanr(exact.scores, hier.scores).statistic),
                }
                rows.append(row)
                print(
                    f"| {row['words']} | {row['tokens']} | {refine} | {row['exact_passes']} | "
                    f"{row['hier_passes']} | {row['exact_passes'] / row['hier_passes']:.1f}x | "
                    f"{row['exact_s']} | {row['hier_s']} | {row['top5']:.2f} | "
                    f"{row['top10']:.2f} | {row['spearman']:.2f} |",
                    flush=True,
                )
    for size in args.sizes:
        for refine in args.refine:
            group = [r for r in rows if r["size"] == size and r["refine"] == refine]
            if group:
                fewer = statistics.median(r["exact_passes"] / r["hier_passes"] for r in group)
                top5 = statistics.mean(r["top5"] for r in group)
                print(
                    f"~{size} words, refine {refine}: median {fewer:.1f}x fewer passes, "
                    f"mean top-5 recall {top5:.2f} over {len(group)} prompts"
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
