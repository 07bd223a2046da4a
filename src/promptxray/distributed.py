"""Whole prompts on Ray workers: the same unit of work as one process, spread out.

An evaluation or a study is many independent prompts; on one machine a 7B model
makes it days. Each Ray worker is an actor that loads the model once and runs
whole prompts with the very function the single-process run uses
(`evaluation.work.compute_prompt`, `study.runner.explain_job`); the driver
alone owns the SQLite store: it sends out only what is not stored yet and
commits each prompt the moment it comes back, so a killed run resumes and
`--ray` rows equal single-process rows.

Faults: a worker that dies (process killed, node lost) loses the prompt it held;
Ray restarts the actor (it loads the model again) and the prompt goes back in the
queue, at most `retries` times. A prompt that fails for its own reasons is an
error row from inside the function (as without Ray) and is never retried; an
unexpected exception in the function is recorded for that prompt, not retried.

An address where no cluster answers is one error (`RayUnreachableError`) within
seconds, before anything is opened or loaded (`ray_address.check_reachable`): Ray
itself would retry the connection for many minutes.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidParameterError
from .ray_address import RayUnreachableError, check_reachable

INSTALL_HINT = "pip install 'promptxray[ray]'"


def require_ray() -> Any:
    """The ray module, or one clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InvalidParameterError(f"Ray is not installed: {INSTALL_HINT}", param="ray") from None
    return ray


def check_ready(options: RayOptions) -> Any:
    """Ray is installed, the settings make sense and the cluster's address answers:
    callers check this before they open a store or load anything; returns the ray module."""
    ray = require_ray()
    options.check()
    if not ray.is_initialized():
        check_reachable(options.address)
    return ray


@dataclass
class RayOptions:
    """Where and how wide: `address` None starts a local Ray with this machine's CPUs."""

    address: str | None = None
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    retries: int = 2  # times a prompt goes out again after its worker died

    def check(self) -> None:
        if self.workers < 1:
            raise InvalidParameterError("workers must be at least 1.", param="workers")
        if self.cpus_per_worker <= 0:
            raise InvalidParameterError(
                "cpus_per_worker must be positive.", param="cpus_per_worker"
            )
        if self.gpus_per_worker < 0:
            raise InvalidParameterError(
                "gpus_per_worker must not be negative.", param="gpus_per_worker"
            )
        if self.retries < 0:
            raise InvalidParameterError("retries must be 0 or more.", param="retries")

    @property
    def torch_threads(self) -> int:
        return max(1, int(self.cpus_per_worker))


@dataclass
class RayStats:
    computed: int = 0
    failed: int = 0
    worker_deaths: int = 0
    seconds: float = 0.0
    per_worker: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        rate = 60 * self.computed / self.seconds if self.seconds > 0 else 0.0
        workers = ", ".join(
            f"worker {w}: {n} ({60 * n / self.seconds:.1f}/min)"
            for w, n in sorted(self.per_worker.items())
        )
        return (
            f"Ray: {self.computed} prompts in {self.seconds:.0f} s ({rate:.1f}/min), "
            f"{self.failed} failed, {self.worker_deaths} worker deaths; {workers}"
        )


class _Worker:
    """One Ray actor: the model, loaded once, and the function to run prompts with."""

    def __init__(self, loader: Callable[[], Any], threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.lm = loader()

    def run(self, fn: Callable[[Any, Any], Any], job: Any) -> Any:
        return fn(self.lm, job)

    def pid(self) -> int:
        return os.getpid()

    def model_name(self) -> str:
        return self.lm.name


def run_on_ray(
    jobs: list[Any] | Callable[[str], list[Any]],
    fn: Callable[[Any, Any], Any],
    loader: Callable[[], Any],
    options: RayOptions,
    on_result: Callable[[Any], None],
    on_failure: Callable[[Any, str], None],
    job_key: Callable[[Any], str] = str,
    on_workers: Callable[[list[Any]], None] | None = None,
) -> RayStats:
    """Run fn(model, job) for every job on Ray workers; results reach `on_result` in the
    driver as they finish, failed jobs `on_failure` (with the reason).

    `jobs` may be a function of the model's name (what the workers loaded, asked of
    the first one), for callers whose stored rows are keyed by it.
    """
    ray = check_ready(options)
    from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError, RayTaskError

    stats = RayStats()
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, options)
    remote = ray.remote(
        num_cpus=options.cpus_per_worker,
        num_gpus=options.gpus_per_worker,
        max_restarts=options.retries + 1,
        max_task_retries=0,
    )(_Worker)
    actors = [remote.remote(loader, options.torch_threads) for _ in range(options.workers)]
    began: float | None = None
    try:
        if callable(jobs):
            jobs = jobs(ray.get(actors[0].model_name.remote()))
        if on_workers is not None:
            on_workers(actors)
        deaths: Counter = Counter()  # per actor index
        attempts: Counter = Counter()  # per job key
        queue = deque(jobs)
        idle = list(range(len(actors)))
        # future -> (worker, job); job None marks a readiness ping of a restarted worker
        waiting: dict[Any, tuple[int, Any]] = {}
        began = time.perf_counter()
        while queue or any(job is not None for _, job in waiting.values()):
            while queue and idle:
                worker = idle.pop(0)
                job = queue.popleft()
                waiting[actors[worker].run.remote(fn, job)] = (worker, job)
            if not waiting:
                raise InvalidParameterError(
                    "Every Ray worker died more often than it may be restarted; "
                    f"{len(queue)} prompts were not run."
                )
            (done,), _ = ray.wait(list(waiting), num_returns=1)
            worker, job = waiting.pop(done)
            try:
                result = ray.get(done)
            except (ActorDiedError, ActorUnavailableError, RayActorError):
                if job is None:  # the restarted worker did not come back: it is gone
                    continue
                stats.worker_deaths += 1
                deaths[worker] += 1
                attempts[job_key(job)] += 1
                if attempts[job_key(job)] <= options.retries:
                    queue.appendleft(job)  # the next free worker takes it
                else:
                    stats.failed += 1
                    on_failure(job, f"its worker died {attempts[job_key(job)]} times")
                if deaths[worker] <= options.retries:
                    # Ray restarts the actor; it is free again once it answers (model loaded).
                    waiting[actors[worker].model_name.remote()] = (worker, None)
                continue
            except RayTaskError as exc:
                stats.failed += 1
                cause = exc.cause if exc.cause is not None else exc
                on_failure(job, f"{type(cause).__name__}: {cause}")
                idle.append(worker)
                continue
            idle.append(worker)
            if job is None:
                continue
            stats.computed += 1
            stats.per_worker[worker] += 1
            on_result(result)
    finally:
        if began is not None:
            stats.seconds = time.perf_counter() - began
        _stop(ray, actors, started_here)
    return stats


def _connect(ray: Any, options: RayOptions) -> None:
    """Start a local Ray, or join the cluster at `options.address` (one error if it fails)."""
    try:
        ray.init(
            address=options.address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"OMP_NUM_THREADS": str(options.torch_threads)}},
        )
    except (ConnectionError, ValueError, RuntimeError) as exc:
        ray.shutdown()  # a half-made connection must not linger for the next try
        if options.address is None:
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RayUnreachableError(
            f"Cannot join the Ray cluster at {options.address}: {reason}", param="ray_address"
        ) from None


def _stop(ray: Any, actors: list[Any], shutdown: bool) -> None:
    for actor in actors:
        ray.kill(actor, no_restart=True)
    if shutdown:
        ray.shutdown()
