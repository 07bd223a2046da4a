"""The results table (methods x metrics, as in the XPrompt paper's Table 1) with bootstrap CIs.

Every cell is a mean over prompts with a 95% percentile-bootstrap interval, so a
reader can see when two methods are not really apart. The resampling uses a fixed
seed and the rows come in prompt order, so the same rows always give the same
table, byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# (key in a row, column title, which direction means "more faithful")
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("bleu", "BLEU", "↓"),
    ("rouge_p", "ROUGE-L P", "↓"),
    ("rouge_r", "ROUGE-L R", "↓"),
    ("rouge_f", "ROUGE-L F1", "↓"),
    ("sbert", "SBERT", "↓"),
    ("pr", "PR", "↓"),
    ("kl", "KL", "↑"),
    ("comprehensiveness", "Comp.", "↑"),
    ("sufficiency", "Suff.", "↓"),
    ("seconds", "s/prompt", ""),
    ("forward_passes", "fwd/prompt", ""),
)
TIMING_COLUMNS = ("seconds",)


@dataclass(frozen=True)
class Cell:
    mean: float | None
    low: float | None
    high: float | None
    n: int

    def as_text(self, digits: int = 3) -> str:
        if self.mean is None:
            return "–"
        if self.low is None or self.high is None or self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def bootstrap_cell(
    values: Sequence[float | None], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> Cell:
    """Mean and percentile-bootstrap interval of the finite values (missing ones dropped)."""
    data = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if data.size == 0:
        return Cell(None, None, None, 0)
    mean = float(data.mean())
    if data.size == 1:
        return Cell(mean, None, None, 1)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(n_boot, data.size))
    means = data[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Cell(mean, float(low), float(high), int(data.size))


@dataclass
class ResultsTable:
    """One row per method, one `Cell` per column."""

    methods: list[str]
    cells: dict[str, dict[str, Cell]]
    counts: dict[str, int]
    title: str = ""

    def to_markdown(self, digits: int = 3) -> str:
        head = ["method", "n"] + [f"{title} {arrow}".strip() for _, title, arrow in COLUMNS]
        lines = []
        if self.title:
            lines += [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |")
        for m in self.methods:
            row = [m, str(self.counts[m])]
            for key, _, _ in COLUMNS:
                cell = self.cells[m][key]
                row.append(cell.as_text(1 if key == "forward_passes" else digits))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines.append(
            "Mean over prompts [95% bootstrap interval]; ↓/↑: lower/higher is more faithful."
        )
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        header = ["method", "n"]
        for key, _, _ in COLUMNS:
            header += [key, f"{key}_low", f"{key}_high"]
        writer.writerow(header)
        for m in self.methods:
            row: list[Any] = [m, self.counts[m]]
            for key, _, _ in COLUMNS:
                c = self.cells[m][key]
                row += [_num(c.mean), _num(c.low), _num(c.high)]
            writer.writerow(row)
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": [
                {"key": k, "title": t, "better": {"↓": "lower", "↑": "higher"}.get(a)}
                for k, t, a in COLUMNS
            ],
            "methods": {
                m: {
                    "n": self.counts[m],
                    **{
                        key: {"mean": c.mean, "low": c.low, "high": c.high, "n": c.n}
                        for key, c in self.cells[m].items()
                    },
                }
                for m in self.methods
            },
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def without_timing(self) -> dict[str, Any]:
        """Everything except wall-clock columns (which differ between identical runs)."""
        d = self.to_dict()
        for m in d["methods"].values():
            for key in TIMING_COLUMNS:
                m.pop(key, None)
        return d

    def rich(self) -> Any:
        from rich.table import Table

        table = Table(title=self.title or None)
        table.add_column("method")
        table.add_column("n", justify="right")
        for _, title, arrow in COLUMNS:
            table.add_column(f"{title} {arrow}".strip(), justify="right")
        for m in self.methods:
            table.add_row(
                m,
                str(self.counts[m]),
                *(
                    self.cells[m][key].as_text(1 if key == "forward_passes" else 3)
                    for key, _, _ in COLUMNS
                ),
            )
        return table


def _num(x: float | None) -> str:
    return "" if x is None else repr(x)


def build_table(
    rows: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    title: str = "",
    n_boot: int = 1000,
    seed: int = 0,
) -> ResultsTable:
    """Aggregate per-(prompt, method) rows (dicts with the COLUMNS keys) into the table.

    Rows should come in a fixed order (prompt order): the bootstrap resamples by
    position, so a different order would give slightly different intervals.
    """
    cells: dict[str, dict[str, Cell]] = {}
    counts: dict[str, int] = {}
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        counts[m] = len(mine)
        cells[m] = {
            key: bootstrap_cell([r.get(key) for r in mine], n_boot=n_boot, seed=seed)
            for key, _, _ in COLUMNS
        }
    return ResultsTable(methods=list(methods), cells=cells, counts=counts, title=title)
