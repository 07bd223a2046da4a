"""The results table (methods x metrics, as in the XPrompt paper's Table 1) with bootstrap CIs.

Every cell is a mean over prompts with a 95% percentile-bootstrap interval, so a
reader can see when two methods are not really apart. Every method's means are
over the same prompts: those (`prompt_key`) where every listed method has a row
without an error, so a method that failed on the hard prompts cannot look better
for it. That n is stated once, under the table, with the number of prompts left
out because some method lacked a row.

Unpaired intervals overlap even when one method beats another on almost every
prompt, so the table also holds **paired comparisons**: for each pair (A, B) and
metric, the mean of A − B over the prompts both have a row for, with a paired
percentile-bootstrap 95% interval (`scipy.stats.bootstrap` on the differences,
2000 resamples) and A's win/tie/loss counts ("win" = more faithful by that metric's
direction, tie = |A − B| <= 1e-9). Markdown gets a second table "Paired differences
(A − B)", JSON a "paired" list; `to_csv()` stays the per-method table only (one
header, easy to load) and `paired_csv()` holds the comparisons, one row per
(A, B, metric); the comparison itself is `paired.py`.

The last three columns summarise the faithfulness check each result carries
(`check_columns`): its mean deletion ratio, mean LDS and the share of prompts it
calls faithful, each over the prompts whose rows carry a check (rows stored before
the check have none; the caption says when that leaves fewer prompts).

The resampling uses a fixed seed and the rows come in prompt order, so the same
rows always give the same table, byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidParameterError
from ..intervals import mean_interval
from .paired import PAIRED_RESAMPLES, TIE, PairedComparison, paired_comparison

__all__ = [
    "COLUMNS",
    "PAIRED_RESAMPLES",
    "TIE",
    "Cell",
    "PairedComparison",
    "ResultsTable",
    "bootstrap_cell",
    "build_table",
    "paired_comparison",
]

# (key in a row, column title, which direction means "more faithful")
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("bleu", "BLEU", "↓"),
    ("rouge_p", "ROUGE-L P", "↓"),
    ("rouge_r", "ROUGE-L R", "↓"),
    ("rouge_f", "ROUGE-L F1", "↓"),
    ("sbert", "SBERT", "↓"),
    ("pr", "PR (per token)", "↓"),
    ("pr_seq_log10", "PR (seq, log10)", "↓"),
    ("kl", "KL", "↑"),
    ("comprehensiveness", "Comp.", "↑"),
    ("sufficiency", "Suff.", "↓"),
    ("seconds", "s/prompt", ""),
    ("forward_passes", "fwd/prompt", ""),
    # The faithfulness check each result carries (`check_columns`), at the same k: its
    # deletion ratio, its LDS, and the share of prompts it calls faithful (a mean of 1/0).
    ("check_deletion_ratio", "check deletion", "↓"),
    ("check_lds", "check LDS", "↑"),
    ("check_faithful", "check faithful", "↑"),
)
CHECK_KEYS = ("check_deletion_ratio", "check_lds", "check_faithful")
TIMING_COLUMNS = ("seconds",)
# Metrics compared pairwise: the faithfulness ones (not timing, not ROUGE P/R, which
# F1 summarises).
PAIRED_METRICS = (
    "pr",
    "pr_seq_log10",
    "kl",
    "bleu",
    "rouge_f",
    "sbert",
    "comprehensiveness",
    "sufficiency",
)


@dataclass(frozen=True)
class Cell:
    """One method's mean of one metric and its bootstrap interval; n = finite values used."""

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
    data = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not data:
        return Cell(None, None, None, 0)
    mean, low, high = mean_interval(data, n_resamples=n_boot, seed=seed, level=level)
    return Cell(mean, low, high, len(data))


@dataclass
class ResultsTable:
    """One row per method, one `Cell` per column; paired comparisons per (A, B, metric).

    `n` is the number of prompts every method's means are over (`counts` repeats
    it per method for older callers); `dropped` the prompts left out because some
    method had no row for them; `paired_n[(A, B)]` the prompts both A and B have.
    """

    methods: list[str]
    cells: dict[str, dict[str, Cell]]
    counts: dict[str, int]
    title: str = ""
    paired: dict[tuple[str, str], dict[str, PairedComparison]] = field(default_factory=dict)
    dropped: int = 0
    n: int = 0
    paired_n: dict[tuple[str, str], int] = field(default_factory=dict)

    def caption(self) -> str:
        """The line under the table: n once, what was left out, what the cells mean."""
        text = f"Mean over the same {self.n} prompts for every method"
        if self.dropped:
            them = "prompt" if self.dropped == 1 else "prompts"
            text += f" ({self.dropped} {them} left out: some method had no row for them)"
        text += " [95% bootstrap interval]; ↓/↑: lower/higher is more faithful."
        checked = min((self.cells[m][k].n for m in self.methods for k in CHECK_KEYS), default=0)
        if checked < self.n:
            text += (
                f" Check columns: over the prompts whose rows have that figure (as few as "
                f"{checked}): a row stored before the check has none, nor a prompt too "
                "short for it."
            )
        return text

    def paired_markdown(self, digits: int = 3) -> str:
        """The "Paired differences (A − B)" table: one row per pair, one cell per metric."""
        if not self.paired:
            return ""
        names = [k for k in PAIRED_METRICS if any(k in v for v in self.paired.values())]
        titles = {key: f"{title} {arrow}" for key, title, arrow in COLUMNS}
        lines = [
            "**Paired differences (A − B)**",
            "",
            "| A − B | n | " + " | ".join(titles[k] for k in names) + " |",
            "| --- | ---: |" + " ---: |" * len(names),
        ]
        for (a, b), by_metric in self.paired.items():
            cells = [by_metric[k].as_text(digits) for k in names]
            n = self.paired_n.get((a, b), 0)
            lines.append(f"| {a} − {b} | {n} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Mean of A − B over the prompts both have [paired 95% percentile-bootstrap "
            "interval, – with fewer than 2 prompts] A's wins/ties/losses (win: A more "
            "faithful by the metric's ↓/↑; tie: |A − B| ≤ 1e-9).",
        ]
        return "\n".join(lines) + "\n"

    def paired_csv(self) -> str:
        """The paired comparisons, one row per (A, B, metric); empty bounds = no interval."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["a", "b", "metric", "n", "mean", "low", "high", "wins", "ties", "losses"])
        for (a, b), by_metric in self.paired.items():
            for key, c in by_metric.items():
                writer.writerow(
                    [
                        a,
                        b,
                        key,
                        c.n,
                        _num(c.mean),
                        _num(c.low),
                        _num(c.high),
                        c.wins,
                        c.ties,
                        c.losses,
                    ]
                )
        return buf.getvalue()

    def to_markdown(self, digits: int = 3) -> str:
        """The per-method table (n stated once, in the caption), then the paired table."""
        head = ["method"] + [f"{title} {arrow}".strip() for _, title, arrow in COLUMNS]
        lines = []
        if self.title:
            lines += [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| " + " | ".join(["---"] + ["---:"] * (len(head) - 1)) + " |")
        for m in self.methods:
            row = [m]
            for key, _, _ in COLUMNS:
                cell = self.cells[m][key]
                row.append(cell.as_text(1 if key == "forward_passes" else digits))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines.append(self.caption())
        paired = self.paired_markdown(digits)
        if paired:
            lines += ["", paired.rstrip("\n")]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """The per-method table only (n repeated per row, it is the same for all)."""
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
            "n_prompts": self.n,
            "dropped_prompts": self.dropped,
            "paired": [
                {"a": a, "b": b, "metric": key, **asdict(c)}
                for (a, b), by_metric in self.paired.items()
                for key, c in by_metric.items()
            ],
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
        """The per-method table for a terminal of 100 columns: means to three significant
        digits under short headers, ROUGE-L precision and recall left to table.md (F1
        sums them up), intervals and the check's ratio and LDS too (its share called
        faithful stays); n is stated once in the caption."""
        from rich.table import Table

        table = Table(
            title=self.title or None,
            caption=f"Means over the same {self.n} prompts; intervals and pairs in table.md.",
            box=None,
            padding=(0, 1),
            pad_edge=False,
            header_style="bold underline",
        )
        table.add_column("method")
        for _, short in CONSOLE_COLUMNS:
            table.add_column(short, justify="right")
        for m in self.methods:
            table.add_row(
                m, *(_short_number(self.cells[m][key].mean) for key, _ in CONSOLE_COLUMNS)
            )
        return table


# The terminal table: (metric key, short header with its direction).
CONSOLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("bleu", "BLEU↓"),
    ("rouge_f", "RL-F1↓"),
    ("sbert", "SBERT↓"),
    ("pr", "PR↓"),
    ("pr_seq_log10", "PRseq↓"),
    ("kl", "KL↑"),
    ("comprehensiveness", "Comp↑"),
    ("sufficiency", "Suff↓"),
    ("seconds", "s"),
    ("forward_passes", "fwd"),
    ("check_faithful", "faith↑"),  # share the check calls faithful; its ratio is in table.md
)


def _short_number(x: float | None) -> str:
    """Three significant digits, at most six characters ("0.0123", "-1.23", "145")."""
    if x is None:
        return "–"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.1e}"
    return f"{x:.3g}"


def _num(x: float | None) -> str:
    return "" if x is None else repr(x)


def build_table(
    rows: Sequence[Mapping[str, Any]],
    methods: Sequence[str],
    title: str = "",
    n_boot: int = 1000,
    seed: int = 0,
) -> ResultsTable:
    """Aggregate per-(prompt, method) rows (dicts with `prompt_key`, `method` and the
    COLUMNS keys) into the table.

    Rows with a truthy `error` and rows of methods not listed are ignored. Means are
    over the prompts where every listed method has a row, for every method (so no
    method is averaged over easier prompts); each pair (A, B) is compared over the
    prompts both have. Rows should come in a fixed order (prompt order): the
    bootstrap resamples by position, so a different order would give slightly
    different intervals.
    """
    methods = list(methods)
    wanted = set(methods)
    by_prompt: dict[Any, dict[str, Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("error") or r["method"] not in wanted:
            continue
        if r.get("prompt_key") is None:
            raise InvalidParameterError("Every row needs a prompt_key to pair methods.")
        got = by_prompt.setdefault(r["prompt_key"], {})
        if r["method"] in got:
            raise InvalidParameterError(
                f"Two rows for prompt {r['prompt_key']!r} and method {r['method']!r}."
            )
        got[r["method"]] = r
    complete = [p for p, got in by_prompt.items() if all(m in got for m in methods)]
    dropped = len(by_prompt) - len(complete)
    cells: dict[str, dict[str, Cell]] = {}
    counts: dict[str, int] = {}
    for m in methods:
        mine = [by_prompt[p][m] for p in complete]
        counts[m] = len(mine)
        cells[m] = {
            key: bootstrap_cell([r.get(key) for r in mine], n_boot=n_boot, seed=seed)
            for key, _, _ in COLUMNS
        }
    direction = {key: arrow for key, _, arrow in COLUMNS}
    paired: dict[tuple[str, str], dict[str, PairedComparison]] = {}
    paired_n: dict[tuple[str, str], int] = {}
    for i, a in enumerate(methods):
        for b in methods[i + 1 :]:
            both = [p for p, got in by_prompt.items() if a in got and b in got]
            paired_n[(a, b)] = len(both)
            paired[(a, b)] = {
                key: paired_comparison(
                    [by_prompt[p][a].get(key) for p in both],
                    [by_prompt[p][b].get(key) for p in both],
                    direction[key],
                    seed=seed,
                )
                for key in PAIRED_METRICS
            }
    return ResultsTable(
        methods=methods,
        cells=cells,
        counts=counts,
        title=title,
        paired=paired,
        dropped=dropped,
        n=len(complete),
        paired_n=paired_n,
    )
