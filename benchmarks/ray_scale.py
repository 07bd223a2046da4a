"""Ray scale-out on this machine: 1 worker vs 2 workers, rows per minute.

The default model, the first 12 prompts of ../shared/data/instructions.jsonl,
leave_one_out + grad_norm (word units, k = 3, 32 new tokens, no SBERT), one torch
thread per worker. Each setting runs into a fresh folder (nothing reused), and
the two are interleaved twice (1, 2, 1, 2) so drift on a shared machine hits both.
The least work is the single-process time divided by the worker count; with
2 workers on 2 cores the goal is >= 1.7x rows per minute. Start-up (Ray and the
first worker's model load) is reported apart and not counted in rows per minute.

Run: .venv/bin/python benchmarks/ray_scale.py   (nothing else heavy running)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from promptxray.distributed import RayOptions
from promptxray.evaluation import EvalConfig, run_evaluation
from promptxray.model import load_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "instructions.jsonl"
N = 12


def one_run(workers: int) -> tuple[float, float]:
    """(rows per minute once the first worker has its model, seconds before that)."""
    import functools

    import ray

    config = EvalConfig(
        methods=["leave_one_out", "grad_norm"], k=3, max_new_tokens=32, use_sbert=False
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "prompts.jsonl"
        data.write_text("".join(DATA.read_text(encoding="utf-8").splitlines(True)[:N]))
        started = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        report = run_evaluation(
            data,
            Path(tmp) / "run",
            config,
            lm=functools.partial(load_model, None),
            show_progress=False,
            ray=RayOptions(workers=workers, cpus_per_worker=1),
        )
        total = time.perf_counter() - started
        ray.shutdown()
    stats = report.ray  # its clock starts once the first worker has its model
    if report.errors:
        print(f"errors: {report.errors[:3]}", file=sys.stderr)
    return 60 * report.computed / stats.seconds, total - stats.seconds


def main() -> None:
    load_model()  # provision the cache before timing
    rates: dict[int, list[float]] = {1: [], 2: []}
    for workers in (1, 2, 1, 2):
        rate, startup = one_run(workers)
        rates[workers].append(rate)
        print(f"{workers} worker(s): {rate:.1f} rows/min (start-up {startup:.0f} s)", flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"\nmedian rows/min: 1 worker {one:.1f}, 2 workers {two:.1f}; speed-up {two / one:.2f}x")


if __name__ == "__main__":
    main()
