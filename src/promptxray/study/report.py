"""The study's report: the CSV tables next to the SQLite store, and report.html.

Everything is computed from the stored rows (no model): the numbers in `tables`,
the figures in `figures`, one sentence per section in `readings`, the page in
`report_html`. Intervals are 95% percentile bootstrap intervals over the rows of a
cell, none for a single row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report_html import render_html
from .spec import StudyRow
from .tables import write_tables

REPORT_NAME = "report.html"


def write_report(
    rows: list[StudyRow], results: list[dict], config: Any, out: Path, source: str
) -> list[Path]:
    """Write the CSV tables and report.html into `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    files = write_tables(rows, results, out)
    page = render_html(rows, results, config, source)
    path = out / REPORT_NAME
    path.write_text(page, encoding="utf-8")
    return [*files, path]
