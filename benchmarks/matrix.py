"""The gradient heatmap (target token x prompt unit) against the previous algorithm and the bound.

Prompts are counselling-forum posts from ../shared/data/counseling.jsonl (one post
each, under a one-line instruction); the target is a fixed reply cut to exactly
--target-tokens tokens and teacher-forced, so every variant differentiates the same
numbers. Per prompt, interleaved, one torch thread:

- previous: the algorithm before shared forwards (commit f6e214d): every target row
  is its own copy of the whole sequence, forward and backward, batched as
  `plan_backward` allows (on a CPU, one row a batch at these lengths);
- now: `grad_norm` with `matrix=True` at token level (blocks of rows share one
  forward that stops at the block's last target token; one backward a row);
- bound: one forward of the whole sequence plus, for each row, the backward over
  exactly its own prefix (each backward timed on its own, the forward it needs run
  untimed): the least a backward-per-row heatmap can cost;
- sentence: `grad_x_input` at sentence level, whose heatmap comes from one
  forward-mode pass per sentence; "previous" for it is the previous token matrix
  (regrouping costs nothing), so the ratio is previous / sentence.

With --gemma, a separate process also measures the peak memory (RSS) of a 64-token
token-level heatmap on Gemma 3 270M (262k-token vocabulary).

    .venv/bin/python benchmarks/matrix.py [--prompts 3] [--target-tokens 64]
        [--gemma] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from _common import reset_peak, status_mb

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "counseling.jsonl"
INSTRUCTION = "Read this message from a counselling forum and reply with care.\n\n"
REPLY = (
    " Thank you for sharing this, it takes courage to write about something so painful."
    " What you describe sounds exhausting, and it makes sense that you feel stuck right now."
    " A good first step could be to talk with someone you trust, or with a counsellor, about"
    " what happens on the hardest days, so that you do not have to carry all of it alone."
    " You could also write down small things that helped before, even a little."
)


def prompts(count: int, min_words: int = 60, max_words: int = 140) -> list[str]:
    """The first `count` posts of a middling length, under the instruction."""
    posts = [json.loads(line)["prompt"] for line in DATA.read_text().splitlines() if line]
    chosen = [p for p in posts if min_words <= len(p.split()) <= max_words][:count]
    return [INSTRUCTION + p for p in chosen]


def previous_matrix(lm, problem) -> torch.Tensor:
    """The previous algorithm: one copy of the whole sequence per target row, forward and
    backward, `plan_backward`'s rows a batch; returns grad norms [rows, positions]."""
    ids = torch.tensor([problem.ids])
    n = len(problem.target_ids)
    step, recompute = lm.plan_backward(ids.shape[1], 16)
    base = lm.embed(ids).detach().float()
    out = torch.zeros(n, ids.shape[1])
    for first in range(0, n, step):
        rows = list(range(first, min(n, first + step)))
        inputs = base.expand(len(rows), -1, -1).clone().requires_grad_(True)
        with lm.recomputing_layers(recompute):
            logprobs = lm.target_logprobs(
                ids.expand(len(rows), -1), problem.target_start, inputs_embeds=inputs
            )
            picks = torch.stack([logprobs[b, j] for b, j in enumerate(rows)])
            (grads,) = torch.autograd.grad(picks.sum(), inputs)
        out[rows] = grads.norm(dim=-1)
    return out


def bound_seconds(lm, problem) -> float:
    """One full forward, plus each row's backward over its own prefix (timed alone)."""
    ids = torch.tensor([problem.ids])
    start = problem.target_start
    base = lm.embed(ids).detach().float()
    began = time.perf_counter()
    with torch.no_grad():
        lm.target_logprobs(ids, start, inputs_embeds=base)
    total = time.perf_counter() - began
    for j in range(len(problem.target_ids)):
        length = start + j + 1
        inputs = base[:, :length].clone().requires_grad_(True)
        logprobs = lm.target_logprobs(ids[:, :length], start, inputs_embeds=inputs)[0]
        began = time.perf_counter()
        torch.autograd.grad(logprobs[j], inputs)
        total += time.perf_counter() - began
    return total


def timed(fn):
    began = time.perf_counter()
    out = fn()
    return time.perf_counter() - began, out


def one_prompt(lm, prompt: str, target_tokens: int) -> dict:
    from promptxray import attribute, build_problem

    reply_ids = lm.tokenizer(REPLY, add_special_tokens=False)["input_ids"][:target_tokens]
    problem = build_problem(lm, prompt, target=lm.tokenizer.decode(reply_ids))
    previous_s, previous = timed(lambda: previous_matrix(lm, problem))
    now_s, now = timed(lambda: attribute(lm, problem, "grad_norm", "token", matrix=True))
    bound_s = bound_seconds(lm, problem)
    sentence_s, sentence = timed(
        lambda: attribute(lm, problem, "grad_x_input", "sentence", matrix=True)
    )
    sources = problem.source_positions
    difference = (previous[:, sources] - torch.tensor(now.matrix)).abs().max().item()
    return {
        "prompt_tokens": len(problem.encoding.ids),
        "target_tokens": len(problem.target_ids),
        "sentences": len(sentence.units),
        "previous_s": round(previous_s, 1),
        "now_s": round(now_s, 1),
        "bound_s": round(bound_s, 1),
        "sentence_s": round(sentence_s, 1),
        "speedup": round(previous_s / now_s, 2),
        "now_over_bound": round(now_s / bound_s, 2),
        "sentence_speedup": round(previous_s / sentence_s, 2),
        "sentence_heatmap": sentence.metadata.get("heatmap", "token rows regrouped"),
        "max_abs_difference": difference,
    }


def gemma_memory(target_tokens: int) -> dict:
    """Peak RSS of a token-level heatmap on Gemma 3 270M, in this (fresh) process."""
    from promptxray import attribute, build_problem, load_model

    torch.set_num_threads(1)
    lm = load_model("gemma-3-270m")
    attribute(lm, build_problem(lm, "Hello there.", target=" Hi."), "grad_norm", matrix=True)
    loaded = status_mb("VmRSS")
    reset_peak()  # peak from here on
    reply_ids = lm.tokenizer(REPLY, add_special_tokens=False)["input_ids"][:target_tokens]
    prompt = INSTRUCTION + "I feel tired all the time and I do not know who to talk to."
    problem = build_problem(lm, prompt, target=lm.tokenizer.decode(reply_ids))
    seconds, result = timed(lambda: attribute(lm, problem, "grad_norm", "word", matrix=True))
    peak = status_mb("VmHWM")
    return {
        "model": lm.name,
        "target_tokens": len(problem.target_ids),
        "units": len(result.units),
        "loaded_mb": round(loaded),
        "peak_mb": round(peak),
        "heatmap_mb": round(peak - loaded),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--target-tokens", type=int, default=64)
    parser.add_argument("--gemma", action="store_true", help="also Gemma 3 270M's peak memory")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--gemma-one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gemma_one:
        print(json.dumps(gemma_memory(args.target_tokens)))
        return
    from promptxray import load_model

    torch.set_num_threads(1)
    lm = load_model()
    rows = []
    print(
        "| prompt tok | target tok | sentences | previous s | now s | bound s | sentence s "
        "| now × | now / bound | sentence × | max |Δ| |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for prompt in prompts(args.prompts):
        r = one_prompt(lm, prompt, args.target_tokens)
        rows.append(r)
        print(
            f"| {r['prompt_tokens']} | {r['target_tokens']} | {r['sentences']} | "
            f"{r['previous_s']} | {r['now_s']} | {r['bound_s']} | {r['sentence_s']} | "
            f"{r['speedup']} | {r['now_over_bound']} | {r['sentence_speedup']} | "
            f"{r['max_abs_difference']:.1e} |",
            flush=True,
        )
    for key in ("speedup", "now_over_bound", "sentence_speedup"):
        print(f"median {key}: {statistics.median(r[key] for r in rows)}")
    result = {"prompts": rows}
    if args.gemma:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        done = subprocess.run(
            [sys.executable, __file__, "--gemma-one", "--target-tokens", str(args.target_tokens)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        result["gemma"] = json.loads(done.stdout.strip().splitlines()[-1])
        print("gemma:", result["gemma"])
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
