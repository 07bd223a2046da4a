"""One worker thread that owns the model, fed by a queue of jobs.

Web requests never touch the model: they submit a job and poll it. A torch model
cannot be driven from two threads at once, and a CPU has no room for two
attributions side by side anyway, so a second request simply waits its turn.
Cancelling works through the progress callbacks every method already calls: the
callback raises `JobCancelled`, which unwinds the method like any error.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import PromptXrayError

log = logging.getLogger(__name__)

QUEUED, RUNNING, DONE, ERROR, CANCELLED = "queued", "running", "done", "error", "cancelled"
FINISHED = (DONE, ERROR, CANCELLED)


class JobCancelled(Exception):
    """Raised inside a job (from a progress callback) once the user cancelled it."""


@dataclass
class Job:
    """What the page polls: status, progress, partial text, and the result or error."""

    id: str
    kind: str
    status: str = QUEUED
    done: int = 0
    total: int = 0
    partial: str = ""
    result: Any = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False
    position: int = 0

    def snapshot(self, queue_position: int = 0) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "partial": self.partial,
            "result": self.result if self.status == DONE else None,
            "error": self.error,
            "queue_position": queue_position,
            "seconds": _elapsed(self),
        }


def _elapsed(job: Job) -> float | None:
    if job.started is None:
        return None
    return (job.finished or time.time()) - job.started


class JobContext:
    """Handed to a running job: report progress or partial text; both check for cancel."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def check(self) -> None:
        if self._job.cancel_requested:
            raise JobCancelled()

    def progress(self, done: int, total: int) -> None:
        self._job.done, self._job.total = int(done), int(total)
        self.check()

    def partial(self, text: str) -> None:
        self._job.partial = text
        self.check()


JobFn = Callable[[JobContext], Any]


class JobQueue:
    """A FIFO of jobs run one at a time by a single daemon thread.

    Finished jobs are kept (up to `keep`) so a page that polls late still finds
    its result.
    """

    def __init__(self, keep: int = 200) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._fns: dict[str, JobFn] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._keep = keep
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._work, name="promptxray-worker", daemon=True)
        self._thread.start()

    def submit(self, kind: str, fn: JobFn) -> Job:
        job = Job(id=uuid.uuid4().hex[:12], kind=kind, position=next(self._order))
        with self._lock:
            self._jobs[job.id] = job
            self._fns[job.id] = fn
            self._forget_old()
        self._queue.put(job.id)
        return job

    def finished(self, kind: str, result: Any) -> Job:
        """A job that is done already (its result was at hand, e.g. cached): the page
        polls it like any other, without waiting behind the jobs in the queue."""
        now = time.time()
        job = Job(
            id=uuid.uuid4().hex[:12],
            kind=kind,
            status=DONE,
            result=result,
            started=now,
            finished=now,
            position=next(self._order),
        )
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def snapshot(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            ahead = sum(
                1
                for other in self._jobs.values()
                if other.status in (QUEUED, RUNNING) and other.position < job.position
            )
            return job.snapshot(ahead if job.status == QUEUED else 0)

    def cancel(self, job_id: str) -> Job | None:
        """Queued jobs are dropped at once; a running job stops at its next progress call."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in FINISHED:
                return job
            job.cancel_requested = True
            if job.status == QUEUED:
                job.status = CANCELLED
                job.finished = time.time()
            return job

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until a job finishes (for tests and scripts; the page polls instead)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if job.status in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status}")
            time.sleep(0.01)

    def shutdown(self) -> None:
        self._queue.put(None)

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.status in FINISHED]
        for job_id in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[job_id]

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            with self._lock:
                job = self._jobs.get(job_id)
                fn = self._fns.pop(job_id, None)
                if job is None or fn is None or job.status != QUEUED:
                    continue
                job.status, job.started = RUNNING, time.time()
            self._run(job, fn)

    def _run(self, job: Job, fn: JobFn) -> None:
        result, error, status = None, None, DONE
        try:
            result = fn(JobContext(job))
        except JobCancelled:
            status = CANCELLED
        except PromptXrayError as exc:
            error, status = str(exc), ERROR
        except Exception as exc:  # a bug: keep serving, show one line, log the rest
            log.error("job %s (%s) failed:\n%s", job.id, job.kind, traceback.format_exc())
            error, status = f"Internal error: {type(exc).__name__}: {exc}", ERROR
        # One step under the lock: a reader that sees the job finished also sees when it
        # finished and its result (setting the status first let wait() return a job
        # whose finish time was still None).
        with self._lock:
            job.result, job.error, job.finished, job.status = result, error, time.time(), status
