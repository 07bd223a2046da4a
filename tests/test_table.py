"""Results tables: same prompts for every method, paired comparisons against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from promptxray.errors import InvalidParameterError
from promptxray.evaluation.table import (
    PAIRED_RESAMPLES,
    build_table,
    paired_comparison,
)


# ----- paired_comparison -----------------------------------------------------------------
def test_paired_comparison_by_hand():
    a = [0.5, 0.4, 0.9, 0.3, None]
    b = [0.6, 0.4, 0.7, 0.5, 0.2]
    c = paired_comparison(a, b, "↓", seed=0)
    diffs = np.array([0.5 - 0.6, 0.4 - 0.4, 0.9 - 0.7, 0.3 - 0.5])  # the None pair drops
    assert c.n == 4 and c.mean == float(diffs.mean())
    assert (c.wins, c.ties, c.losses) == (2, 1, 1)  # lower is better: -0.1, -0.2 win
    assert c.low <= c.mean <= c.high
    higher = paired_comparison(a, b, "↑", seed=0)
    assert (higher.wins, higher.ties, higher.losses) == (1, 1, 2)
    assert (higher.mean, higher.low, higher.high) == (c.mean, c.low, c.high)
    with pytest.raises(InvalidParameterError):
        paired_comparison(a, b, "", seed=0)


def test_paired_interval_is_scipys_percentile_bootstrap_reproduced_with_numpy():
    """Same generator, same draws: resample the differences, take the 2.5/97.5 percentiles."""
    a = [0.9, 0.1, 0.4, 0.75, 0.3, 0.6, 0.2]
    b = [0.6, 0.2, 0.15, 0.75, -0.4, 0.65, 0.15]
    diffs = np.array(a) - np.array(b)
    for seed in (0, 3):
        c = paired_comparison(a, b, "↓", seed=seed)
        picks = np.random.default_rng(seed).integers(0, len(diffs), (PAIRED_RESAMPLES, 7))
        low, high = np.quantile(diffs[picks].mean(axis=1), [0.025, 0.975])
        assert c.low == pytest.approx(low, rel=1e-12) and c.high == pytest.approx(high, rel=1e-12)
        assert c.low <= c.mean <= c.high
    # a tiny resample count: 4 resampled means, interval = linear 2.5/97.5 percentiles
    c = paired_comparison(a, b, "↓", seed=5, n_resamples=4)
    picks = np.random.default_rng(5).integers(0, 7, (4, 7))
    means = np.sort(diffs[picks].mean(axis=1))
    by_hand_low = means[0] + 0.075 * (means[1] - means[0])  # position 0.025 * 3
    by_hand_high = means[2] + 0.925 * (means[3] - means[2])  # position 0.975 * 3
    assert c.low == pytest.approx(by_hand_low, rel=1e-12)
    assert c.high == pytest.approx(by_hand_high, rel=1e-12)


def test_paired_interval_agrees_with_an_independent_resampling():
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, 40)
    b = a + rng.normal(0.3, 0.2, 40)
    c = paired_comparison(list(a), list(b), "↓", seed=0, n_resamples=4000)
    picks = np.random.default_rng(7).integers(0, 40, size=(20000, 40))
    low, high = np.quantile((a - b)[picks].mean(axis=1), [0.025, 0.975])
    assert c.low == pytest.approx(low, abs=0.01) and c.high == pytest.approx(high, abs=0.01)
    assert c.excludes_zero and c.wins + c.losses == 40 and c.wins >= 38
    assert paired_comparison(list(a), list(b), "↓", seed=0, n_resamples=4000) == c


def test_a_constant_difference_has_a_point_interval_and_one_pair_none():
    c = paired_comparison([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], "↑")
    assert (c.mean, c.low, c.high) == (0.5, 0.5, 0.5)
    assert (c.wins, c.ties, c.losses) == (3, 0, 0)
    # np.mean([0.1] * 3) != 0.1; the constant case still gives exactly [d, d]
    c = paired_comparison([0.1, 0.1, 0.1], [0.0, 0.0, 0.0], "↓")
    assert (c.mean, c.low, c.high) == (0.1, 0.1, 0.1)
    one = paired_comparison([1.0], [0.0], "↑")
    assert one.mean == 1.0 and one.low is None and one.high is None
    assert one.as_text() == "+1.000 [–] 1/0/0"
    none = paired_comparison([None], [0.0], "↑")
    assert none.n == 0 and none.mean is None and none.as_text() == "–"


def test_ties_are_within_1e_9():
    c = paired_comparison([1.0, 1.0, 1.0], [1.0 + 5e-10, 1.0 - 2e-9, 1.0 + 2e-9], "↓")
    assert (c.wins, c.ties, c.losses) == (1, 1, 1)


# ----- build_table -----------------------------------------------------------------------
def _row(prompt, method, pr, **extra):
    kl = None if pr is None else 1.0 - pr
    return {"prompt_key": prompt, "method": method, "pr": pr, "kl": kl, **extra}


def test_every_method_is_averaged_over_the_same_prompts():
    rows = [
        _row("p1", "a", 0.2),
        _row("p1", "b", 0.4),
        _row("p2", "a", 0.4),
        _row("p2", "b", 0.8),
        _row("p3", "a", 0.0),  # b has no row for p3: p3 leaves every mean
        _row("p4", "a", 0.9),
        _row("p4", "b", None, error="k=5 but 3 units"),  # an error row is no row
        _row("p5", "c", 0.5),  # a method not listed does not count
    ]
    table = build_table(rows, ["a", "b"])
    assert table.n == 2 and table.dropped == 2
    assert table.counts == {"a": 2, "b": 2}
    assert table.cells["a"]["pr"].mean == pytest.approx(0.3)  # not (0.2+0.4+0+0.9)/4
    assert table.cells["b"]["pr"].mean == pytest.approx(0.6)
    pr = table.paired[("a", "b")]["pr"]
    assert table.paired_n[("a", "b")] == 2
    assert pr.mean == pytest.approx(-0.3) and (pr.wins, pr.ties, pr.losses) == (2, 0, 0)
    kl = table.paired[("a", "b")]["kl"]
    assert kl.mean == pytest.approx(0.3) and (kl.wins, kl.losses) == (2, 0)  # higher KL wins
    text = table.to_markdown()
    assert "Mean over the same 2 prompts for every method (2 prompts left out" in text
    assert "**Paired differences (A − B)**" in text
    assert "| a − b | 2 | " in text and "2/0/0" in text
    assert "a,b,pr,2," in table.paired_csv()
    d = table.to_dict()
    assert d["n_prompts"] == 2 and d["dropped_prompts"] == 2
    assert d["paired"][0]["a"] == "a" and d["paired"][0]["metric"] == "pr"
    assert table.to_markdown() == build_table(rows, ["a", "b"]).to_markdown()  # deterministic


def test_pairs_use_the_prompts_both_methods_have():
    rows = [
        _row("p1", "a", 0.2),
        _row("p1", "b", 0.5),
        _row("p2", "a", 0.1),
        _row("p2", "b", 0.3),
        _row("p2", "c", 0.0),
    ]
    table = build_table(rows, ["a", "b", "c"])
    assert table.n == 1 and table.dropped == 1  # only p2 has all three
    assert list(table.paired) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert table.paired_n == {("a", "b"): 2, ("a", "c"): 1, ("b", "c"): 1}
    ab = table.paired[("a", "b")]["pr"]
    assert ab.mean == pytest.approx(-0.25) and ab.low is not None
    assert table.paired[("a", "c")]["pr"].low is None  # one prompt: no interval


def test_rows_must_name_their_prompt_once():
    with pytest.raises(InvalidParameterError):
        build_table([{"method": "a", "pr": 0.1}], ["a"])
    with pytest.raises(InvalidParameterError):
        build_table([_row("p1", "a", 0.1), _row("p1", "a", 0.2)], ["a"])


# ----- the one bootstrap ------------------------------------------------------------------
def test_cells_are_scipys_bootstrap_and_equal_the_former_numpy_resampling():
    """A cell's interval is scipy.stats.bootstrap (percentile, default_rng(seed)); it draws
    what the hand-written numpy resampling drew, so tables from before read the same."""
    from scipy.stats import bootstrap

    from promptxray.evaluation.table import bootstrap_cell

    values = [0.12, 0.5, 0.33, 0.91, 0.27, 0.4, 0.05]
    data = np.array(values)
    for seed in (0, 4):
        cell = bootstrap_cell([*values, None, float("nan")], n_boot=1000, seed=seed)
        ref = bootstrap(
            (data,),
            np.mean,
            n_resamples=1000,
            method="percentile",
            rng=np.random.default_rng(seed),
        ).confidence_interval
        assert (cell.low, cell.high) == (ref.low, ref.high)
        picks = np.random.default_rng(seed).integers(0, data.size, size=(1000, data.size))
        low, high = np.quantile(data[picks].mean(axis=1), [0.025, 0.975])
        assert cell.low == pytest.approx(low, rel=1e-12)
        assert cell.high == pytest.approx(high, rel=1e-12)
        assert cell.low < cell.mean < cell.high and cell.mean == pytest.approx(data.mean())
        assert cell.n == 7


def test_the_study_uses_the_same_interval():
    from scipy.stats import bootstrap

    from promptxray.study.tables import mean_ci

    values = [0.1, 0.25, 0.3, 0.45, 0.2]
    mean, low, high = mean_ci(values, seed=2)
    ref = bootstrap(
        (np.array(values),),
        np.mean,
        n_resamples=1000,
        method="percentile",
        rng=np.random.default_rng(2),
    ).confidence_interval
    assert (low, high) == (ref.low, ref.high) and low < mean < high
    assert mean_ci([0.3, 0.3, 0.3]) == (0.3, None, None)  # no spread: the study shows none
