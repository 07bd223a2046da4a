"""What a faithfulness check request may ask, refused before any job is queued.

The check itself is the library's (`api.check_result`); it validates its input only
once the job runs on the worker thread, where a mistake would read as a failed job.
So the server asks the library's own rules first (`api.check_row`, `api.effective_k`),
and a bad row or k is a 4xx with its field at once.
"""

from __future__ import annotations

from typing import Any

from .. import api
from ..api import Problem, Unit


def check_k_fits(problem: Problem, units: list[Unit], k: int | None) -> None:
    """Refuse a check k these units cannot take (the library's own rule and message), so a
    bad k is a 4xx now, not a failed job; a check that cannot run at all is no error: its
    verdict says why."""
    if k is not None and api.why_not(problem, units) is None:
        api.effective_k(len(units), k)


def checks_on(stored: dict[str, Any]) -> bool:
    """Whether a stored explanation was asked with its check (results saved before the
    setting existed: whether they carry one)."""
    return bool(stored["settings"].get("check", stored["attribution"].record.check is not None))
