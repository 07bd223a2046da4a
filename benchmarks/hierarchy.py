"""Exact vs adaptive hierarchical leave-one-out on long prompts of the shared sets.

No prompt of ../shared/data is longer than about 230 words, so long prompts are built
by joining consecutive prompts of ONE set as paragraphs, under a one-line header and
followed by one question, until the prompt reaches its size; sizes are spread
geometrically over 250-1,200 words (--per-set of each set, default 10 + 10 = 20
prompts). A set that runs out wraps around to its start (the table marks such prompts
"wrapped": they reuse text an earlier prompt had).

The target is the model's own 32-token greedy continuation, generated once and kept,
then teacher-forced for both runs. Default model, word units, `--coarse` sentence.
For each prompt: forward passes of exact and hierarchical leave-one-out and their
ratio, and top-5 recall: of hierarchical's 5 strongest words (by |score|), the share
whose exact |score| is at least 95% of exact's fifth-strongest |score| (a word within
5% of the fifth counts as a hit). Medians at the end.

Exact leave-one-out on 1,200 words takes over an hour on one CPU thread, so every
prompt's exact result (target ids and scores) and every hierarchical row is cached in
--cache (JSON, rewritten after each prompt): run the same command again to resume.

    .venv/bin/python benchmarks/hierarchy.py [--per-set 10] [--sizes 250 1200]
        [--coarse sentence] [--params top=5 budget=0.5] [--only 0] [--threads 1]
        [--data ../shared/data] [--cache benchmarks/data/hierarchy_cache.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path

import torch

from promptxray import attribute, build_problem, load_model
from promptxray.methods import get_method

ROOT = Path(__file__).resolve().parents[1]
FRAMES = {
    "counseling": (
        "Here are messages posted on a counselling forum.\n\n",
        "\n\nWhat do these writers have in common? Answer in two sentences.",
    ),
    "instructions": (
        "Here are requests people wrote for an assistant.\n\n",
        "\n\nWhat do these requests have in common? Answer in two sentences.",
    ),
}
MAX_WORDS = 1200


def sizes(low: int, high: int, count: int) -> list[int]:
    """`count` sizes from `low` to `high`, spread geometrically."""
    if count == 1:
        return [low]
    return [round(low * (high / low) ** (i / (count - 1))) for i in range(count)]


def long_prompts(data: Path, name: str, targets: list[int]) -> list[dict]:
    """One prompt per target size from consecutive prompts of one set (wrapping round)."""
    rows = [json.loads(line) for line in (data / f"{name}.jsonl").read_text().splitlines() if line]
    texts = [row["prompt"] for row in rows]
    head, tail = FRAMES[name]
    frame = len(head.split()) + len(tail.split())
    out, cursor = [], 0
    for size in targets:
        chosen, words, wrapped = [], frame, cursor >= len(texts)
        while words < size:
            text = texts[cursor % len(texts)]
            if words + len(text.split()) > MAX_WORDS and chosen:
                break
            wrapped |= cursor >= len(texts)
            chosen.append(text)
            words += len(text.split())
            cursor += 1
        prompt = head + "\n\n".join(chosen) + tail
        out.append(
            {"set": name, "prompt": prompt, "words": len(prompt.split()), "wrapped": wrapped}
        )
    return out


def top5_recall(exact: list[float], estimate: list[float], k: int = 5) -> float:
    """Share of the estimate's k strongest words whose exact |score| is within 5% of (or
    above) exact's k-th strongest |score|."""
    fifth = sorted((abs(s) for s in exact), reverse=True)[k - 1]
    picked = sorted(range(len(estimate)), key=lambda i: -abs(estimate[i]))[:k]
    return sum(abs(exact[i]) >= 0.95 * fifth for i in picked) / k


def parse_params(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        out[name] = (
            json.loads(value) if value[:1].isdigit() or value in ("true", "false") else value
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-set", type=int, default=10, help="prompts per shared set")
    parser.add_argument("--sizes", type=int, nargs=2, default=[250, 1200], metavar=("LOW", "HIGH"))
    parser.add_argument("--sets", nargs="+", default=sorted(FRAMES), choices=sorted(FRAMES))
    parser.add_argument("--coarse", default="sentence")
    parser.add_argument("--params", nargs="*", default=[], help="more hierarchical params")
    parser.add_argument("--only", type=int, nargs="*", help="run only these prompt indices")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--cache", type=Path, default=ROOT / "benchmarks" / "data" / "hierarchy_cache.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prompts = [
        p
        for name in args.sets
        for p in long_prompts(args.data, name, sizes(*args.sizes, args.per_set))
    ]
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    hier_params = {"coarse": args.coarse, **parse_params(args.params)}
    # keyed by every resolved parameter, so rows of another rule or default never match
    resolved = get_method("leave_one_out").resolve(hier_params).model_dump(mode="json")
    hier_key = json.dumps(resolved, sort_keys=True)
    lm = load_model()
    rows = []
    print("| # | set | words | wrapped | exact passes | hier. passes | fewer | top-5 | hier. s |")
    print("| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for index, item in enumerate(prompts):
        if args.only is not None and index not in args.only:
            continue
        key = hashlib.sha256(f"{lm.name}\0{item['prompt']}".encode()).hexdigest()[:16]
        entry = cache.setdefault(key, {"set": item["set"], "words": item["words"]})
        if "output_ids" not in entry:
            problem = build_problem(lm, item["prompt"], max_new_tokens=32)
            entry["output_ids"] = problem.output_ids
        problem = build_problem(lm, item["prompt"], output_ids=entry["output_ids"])
        if "exact" not in entry:
            started = time.perf_counter()
            exact = attribute(lm, problem, "leave_one_out", "word", check=False)
            entry["exact"] = {
                "scores": exact.scores,
                "passes": exact.metadata["forward_passes"],
                "seconds": round(time.perf_counter() - started, 1),
            }
            _save(args.cache, cache)
        hier_rows = entry.setdefault("hierarchical", {})
        if hier_key not in hier_rows:
            started = time.perf_counter()
            hier = attribute(lm, problem, "leave_one_out", "word", check=False, **hier_params)
            hier_rows[hier_key] = {
                "scores": hier.scores,
                "passes": hier.metadata["forward_passes"],
                "seconds": round(time.perf_counter() - started, 1),
                "hierarchy": hier.metadata.get("hierarchy"),
                "note": hier.notes.refinement,
            }
            _save(args.cache, cache)
        exact, hier = entry["exact"], hier_rows[hier_key]
        row = {
            "index": index,
            "set": item["set"],
            "words": item["words"],
            "wrapped": item["wrapped"],
            "exact_passes": exact["passes"],
            "hier_passes": hier["passes"],
            "fewer": exact["passes"] / hier["passes"],
            "top5": top5_recall(exact["scores"], hier["scores"]),
            "hier_s": hier["seconds"],
        }
        rows.append(row)
        print(
            f"| {index} | {row['set']} | {row['words']} | {'yes' if row['wrapped'] else ''} | "
            f"{row['exact_passes']} | {row['hier_passes']} | {row['fewer']:.1f}x | "
            f"{row['top5']:.2f} | {row['hier_s']} |",
            flush=True,
        )
    if rows:
        print(
            f"\n{hier_key}: median {statistics.median(r['fewer'] for r in rows):.1f}x fewer "
            f"passes, median top-5 recall {statistics.median(r['top5'] for r in rows):.2f} "
            f"(mean {statistics.mean(r['top5'] for r in rows):.2f}; "
            f"{sum(r['top5'] >= 0.9 for r in rows)} of {len(rows)} prompts at >= 0.9)"
        )


def _save(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache))
    tmp.replace(path)


if __name__ == "__main__":
    main()
