"""Results tables: same prompts for every method, paired comparisons against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from promptxray.evaluation.table import build_table, paired_comparison


def test_paired_comparison_by_hand():
    a = [0.5, 0.4, 0.9, 0.3, None]
    b = [0.6, 0.4, 0.7, 0.5, 0.2]
    c = paired_comparison(a, b, "↓", seed=0)
    diffs = np.array([-0.1, 0.0, 0.2, -0.2])
    assert c.n == 4 and c.mean == pytest.approx(diffs.mean())
    assert (c.wins, c.ties, c.losses) == (2, 1, 1)  # lower is better: -0.1, -0.2 win
    assert c.low <= c.mean <= c.high
    higher = paired_comparison(a, b, "↑", seed=0)
    assert (higher.wins, higher.ties, higher.losses) == (1, 1, 2)


def test_paired_interval_is_the_percentile_bootstrap_of_the_differences():
    """Agrees with resampling the differences directly (same idea, independent code)."""
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, 40)
    b = a + rng.normal(0.3, 0.2, 40)
    c = paired_comparison(list(a), list(b), "↓", seed=0, n_resamples=4000)
    diffs = a - b
    picks = np.random.default_rng(7).integers(0, 40, size=(20000, 40))
    means = diffs[picks].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    assert c.low == pytest.approx(low, abs=0.01) and c.high == pytest.approx(high, abs=0.01)
    assert c.excludes_zero and c.wins + c.losses == 40 and c.wins >= 38


def test_a_constant_difference_has_a_point_interval_and_one_pair_none():
    c = paired_comparison([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], "↑")
    assert (c.mean, c.low, c.high) == (0.5, 0.5, 0.5)
    one = paired_comparison([1.0], [0.0], "↑")
    assert one.mean == 1.0 and one.low is None and one.as_text().endswith("1/0/0")


def _row(prompt, method, pr):
    return {"prompt_key": prompt, "method": method, "pr": pr, "kl": 1.0 - pr}


def test_every_method_is_averaged_over_the_same_prompts():
    rows = [
        _row("p1", "a", 0.2),
        _row("p1", "b", 0.4),
        _row("p2", "a", 0.4),
        _row("p2", "b", 0.8),
        _row("p3", "a", 0.0),  # b has no row for p3: p3 leaves every mean
    ]
    table = build_table(rows, ["a", "b"])
    assert table.counts == {"a": 2, "b": 2} and table.dropped == 1
    assert table.cells["a"]["pr"].mean == pytest.approx(0.3)
    pr = table.paired[("a", "b")]["pr"]
    assert pr.mean == pytest.approx(-0.3) and (pr.wins, pr.losses) == (2, 0)
    text = table.to_markdown()
    assert "1 prompts without a row for every method left out" in text
    assert "| a − b |" in text and "2/0/0" in text
    assert "a,b,pr,2," in table.paired_csv()
    assert table.to_dict()["paired"][0]["metric"] == "pr"
