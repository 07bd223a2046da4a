"""Peak memory (RSS) of gradient salience on long prompts with the default model.

Each (method, prompt length) runs in its own Python process, so one case's peak
cannot hide another's: the process loads the model, builds a prompt of the asked
number of tokens (a paragraph repeated and cut on a token boundary) with a fixed
9-token target, and runs the method once. Reported: RSS after loading (and one
warm-up call on a short prompt, which pages the memory-mapped weights in), the peak
RSS while the method ran (the peak is reset after loading through
``/proc/self/clear_refs``, Linux only), and the difference, which is what the
method itself cost.

    .venv/bin/python benchmarks/memory.py [--tokens 250 1000 2000] [--ig-steps 20]
        [--methods grad_norm integrated_gradients] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import reset_peak, status_mb

PARAGRAPH = (
    "The committee met on Tuesday to review the quarterly budget. Several members "
    "asked why travel costs had doubled, and the treasurer explained that two "
    "conferences had moved abroad. After a long discussion they agreed to cap "
    "spending on flights and to publish the figures every month. "
)
TARGET = " The committee agreed to cap travel spending."
CASES = ("grad_norm", "integrated_gradients")


def one(method: str, tokens: int, steps: int = 20) -> dict[str, float | int | str]:
    """Run one case in this process and return its numbers."""
    import torch

    from promptxray import explain, load_model

    torch.set_num_threads(1)
    lm = load_model()
    ids = lm.tokenizer(PARAGRAPH * (tokens // 40 + 2), add_special_tokens=False)["input_ids"]
    prompt = lm.tokenizer.decode(ids[:tokens])
    # The weights are memory-mapped: the first forward pages them in. Warm up on a short
    # prompt so "loaded" is the model really in memory, not the method's cost.
    params = {"steps": steps} if method == "integrated_gradients" else {}
    explain("Hello there.", model=lm, method=method, target=TARGET, **params)
    loaded = status_mb("VmRSS")
    reset_peak()
    started = time.perf_counter()
    result = explain(prompt, model=lm, method=method, target=TARGET, **params)
    seconds = time.perf_counter() - started
    peak = status_mb("VmHWM")
    return {
        "method": method if method != "integrated_gradients" else f"{method} ({steps} steps)",
        "prompt_tokens": len(lm.encode_prompt(prompt).ids),
        "loaded_mb": round(loaded),
        "peak_mb": round(peak),
        "method_mb": round(peak - loaded),
        "seconds": round(seconds, 1),
        "units": len(result.scores),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[250, 1000, 2000])
    parser.add_argument("--methods", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--ig-steps", type=int, nargs="+", default=[20])
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument(
        "--one", nargs=3, metavar=("METHOD", "TOKENS", "STEPS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print("| method | prompt tokens | RSS loaded (MB) | peak RSS (MB) | method (MB) | s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    cases = [
        (method, steps)
        for method in args.methods
        for steps in (args.ig_steps if method == "integrated_gradients" else [0])
    ]
    for tokens in args.tokens:
        for method, steps in cases:
            done = subprocess.run(
                [sys.executable, __file__, "--one", method, str(tokens), str(steps)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"| {row['method']} | {row['prompt_tokens']} | {row['loaded_mb']} | "
                f"{row['peak_mb']} | {row['method_mb']} | {row['seconds']} |",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    main()
