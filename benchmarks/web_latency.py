"""Measure the web UI's latency from clicking Explain to coloured units, in a real browser.

Starts the server on the loaded model (default: SmolLM2-135M-Instruct), opens the
page in Chromium, generates once for a ~60-word prompt, then clicks Explain
(grad_norm, word granularity) several times and reports, per click, the wall time
until the new colours are on screen, next to the method's own seconds.

    .venv/bin/python benchmarks/web_latency.py [--repeats 5] [--words 60]

Needs Chromium (`apt-get install chromium`) and the `playwright` package.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Used when the shared prompt sets are not next to the repository.
_FALLBACK = (
    "I run a small bakery and want to start selling bread online. Customers mostly "
    "order sourdough, rye and seeded loaves, and they want delivery on weekends. "
    "Write a short, friendly paragraph for my website that explains how ordering "
    "works, when deliveries happen, and why fresh bread tastes better than bread "
    "from the supermarket. Keep it under one hundred words."
)


def sixty_word_prompt(words: int) -> str:
    """A real prompt of about `words` words from the shared set, else a built-in one."""
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "counseling.jsonl"
    if data.exists():
        rows = [json.loads(line)["prompt"] for line in data.read_text().splitlines() if line]
        return min(rows, key=lambda p: abs(len(p.split()) - words))
    return _FALLBACK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--words", type=int, default=60)
    parser.add_argument("--model", default=None)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (on a shared, oversubscribed machine 1 is much faster)",
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from playwright.sync_api import sync_playwright

    from promptxray import load_model
    from promptxray.server import create_app, serve_in_thread

    started = time.perf_counter()
    lm = load_model(args.model)
    print(f"model {lm.name} loaded in {time.perf_counter() - started:.2f} s")
    app = create_app(lm, tempfile.mkdtemp(prefix="pxr-latency-"))
    prompt = sixty_word_prompt(args.words)
    import torch

    print(f"prompt: {len(prompt.split())} words; torch threads: {torch.get_num_threads()}")

    with serve_in_thread(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 1000})
        page.set_default_timeout(300_000)
        page.goto(f"{url}/")
        page.wait_for_function("() => document.querySelector('#method').options.length > 0")
        page.fill("#prompt", prompt)
        page.fill("#max-new", "64")
        t0 = time.perf_counter()
        page.click("#generate")
        page.wait_for_function("() => !document.querySelector('#explain').disabled")
        print(f"generate (64 tokens max): {time.perf_counter() - t0:.2f} s click-to-text")
        clicks, method_seconds = [], []
        for _ in range(args.repeats):
            before = page.evaluate(
                "() => document.querySelector('#result-card').dataset.explanation"
            )
            t0 = time.perf_counter()
            page.click("#explain")
            page.wait_for_function(
                "([old]) => { const c = document.querySelector('#result-card');"
                " return c.dataset.explanation && c.dataset.explanation !== old &&"
                " document.querySelectorAll('#sal-prompt .unit').length > 0; }",
                arg=[before],
                polling="raf",
            )
            clicks.append(time.perf_counter() - t0)
            meta = page.locator("#result-meta").inner_text()
            method_seconds.append(float(meta.split(" s ·")[0].rsplit("· ", 1)[-1]))
        n_units = page.locator("#sal-prompt .unit").count()
        browser.close()
    print(f"units coloured: {n_units} prompt words")
    print(
        "click Explain -> colours (s): "
        + ", ".join(f"{c:.2f}" for c in clicks)
        + f"  median {statistics.median(clicks):.2f}"
    )
    print(
        "of which grad_norm itself (s): "
        + ", ".join(f"{c:.2f}" for c in method_seconds)
        + f"  median {statistics.median(method_seconds):.2f}"
    )


if __name__ == "__main__":
    main()
