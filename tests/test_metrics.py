"""Faithfulness metrics on inputs whose values can be worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from promptxray.errors import InvalidParameterError
from promptxray.evaluation.metrics import (
    aopc,
    aopc_ks,
    bleu,
    kl_divergence,
    probability_ratio,
    rouge_l,
    sbert_cosine,
    sequence_log10_ratio,
)
from promptxray.evaluation.table import bootstrap_cell, build_table

TEXT = "The quick brown fox jumps over the lazy dog."


# ----- BLEU ----------------------------------------------------------------------------
def test_bleu_identical_is_one_and_disjoint_is_zero():
    assert bleu(TEXT, TEXT) == pytest.approx(1.0)
    assert bleu(TEXT, TEXT) <= 1.0
    assert bleu("one two three", "four five six") == 0.0
    assert bleu("", "") == 1.0
    assert bleu("", TEXT) == 0.0


def test_bleu_prefix_pays_only_the_brevity_penalty():
    # Every 1..4-gram of the 4-word candidate is in the 8-word reference, so all
    # precisions are 1 and BLEU = BP = exp(1 - 8/4).
    assert bleu("the cat sat on", "the cat sat on the mat today please") == pytest.approx(
        math.exp(-1.0)
    )


# ----- ROUGE-L ---------------------------------------------------------------------------
def test_rouge_identical_and_disjoint():
    assert rouge_l(TEXT, TEXT) == pytest.approx((1.0, 1.0, 1.0))
    assert rouge_l("alpha beta", "gamma delta") == (0.0, 0.0, 0.0)


def test_rouge_known_values():
    # LCS("a b c d", "a b x d") = "a b d": 3 of 4 words on both sides.
    assert rouge_l("a b c d", "a b x d") == pytest.approx((0.75, 0.75, 0.75))
    # Candidate "a b" against reference "a b c d": P = 2/2, R = 2/4, F1 = 2/3.
    assert rouge_l("a b", "a b c d") == pytest.approx((1.0, 0.5, 2 / 3))


# ----- SentenceBERT ----------------------------------------------------------------------
def test_sbert_identical_close_and_unrelated():
    assert sbert_cosine(TEXT, TEXT) == pytest.approx(1.0, abs=1e-4)
    near = sbert_cosine("A fast brown fox leaps over a lazy dog.", TEXT)
    far = sbert_cosine("Quarterly tax filings are due in April.", TEXT)
    assert near > 0.7
    assert far < 0.3
    assert near > far


# ----- PR and KL -------------------------------------------------------------------------
def test_probability_ratio():
    lp = torch.tensor([-0.3, -2.0, -1.1])
    assert probability_ratio(lp, lp) == pytest.approx(1.0)
    # Differences -0.5 and -0.5: PR = exp(-0.5).
    assert probability_ratio(torch.tensor([-1.0, -2.0]), torch.tensor([-0.5, -1.5])) == (
        pytest.approx(math.exp(-0.5))
    )
    # Differences -1 and +0.2: mean -0.4.
    assert probability_ratio(torch.tensor([-2.0, -0.8]), torch.tensor([-1.0, -1.0])) == (
        pytest.approx(math.exp(-0.4))
    )
    with pytest.raises(InvalidParameterError):
        probability_ratio(torch.zeros(2), torch.zeros(3))


def test_kl_divergence():
    p = torch.tensor([[0.5, 0.5], [0.2, 0.8]]).log()
    assert kl_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    q = torch.tensor([[0.9, 0.1], [0.2, 0.8]]).log()
    # Position 0: 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1); position 1: 0.
    expected = (0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)) / 2
    assert kl_divergence(p, q) == pytest.approx(expected, rel=1e-5)
    # KL is not symmetric: the masked distribution is the first argument.
    assert kl_divergence(q, p) != pytest.approx(kl_divergence(p, q), rel=1e-3)


# ----- AOPC ------------------------------------------------------------------------------
def test_aopc_and_capped_ks():
    assert aopc(-1.0, [-2.0, -3.0]) == pytest.approx(1.5)
    assert aopc(-1.0, [-1.0]) == 0.0
    assert aopc_ks(20) == [1, 3, 5, 10]
    assert aopc_ks(4) == [1, 3, 4, 4]
    with pytest.raises(InvalidParameterError):
        aopc(0.0, [])


# ----- the table ---------------------------------------------------------------------------
def test_bootstrap_cell():
    c = bootstrap_cell([0.5, 0.5, 0.5])
    assert (c.mean, c.low, c.high, c.n) == (0.5, 0.5, 0.5, 3)
    values = [0.1, 0.4, 0.35, 0.8, 0.2, None, float("nan")]
    a, b = bootstrap_cell(values), bootstrap_cell(values)
    assert a == b and a.n == 5
    assert a.mean == pytest.approx(0.37)
    assert 0.1 <= a.low < a.mean < a.high <= 0.8
    assert bootstrap_cell([]).mean is None
    single = bootstrap_cell([2.0])
    assert single.mean == 2.0 and single.as_text() == "2.000"


def test_build_table_outputs():
    rows = [
        {"prompt_key": "p1", "method": "a", "bleu": 0.2, "kl": 1.0, "seconds": 1.0},
        {"prompt_key": "p2", "method": "a", "bleu": 0.4, "kl": 3.0, "seconds": 3.0},
        {"prompt_key": "p1", "method": "b", "bleu": 0.9, "kl": 0.0, "seconds": 0.5},
        {"prompt_key": "p2", "method": "b", "bleu": 0.9, "kl": 0.0, "seconds": 0.5},
    ]
    table = build_table(rows, ["a", "b"], title="t")
    assert table.counts == {"a": 2, "b": 2}
    assert table.cells["a"]["bleu"].mean == pytest.approx(0.3)
    assert table.cells["a"]["sbert"].mean is None
    md = table.to_markdown()
    assert "| a | 0.300 [" in md and "| b | 0.900 [0.900, 0.900]" in md
    assert "Mean over the same 2 prompts for every method [" in md  # n stated once
    assert "| method | BLEU ↓ |" in md
    assert "BLEU ↓" in md and "KL ↑" in md
    csv_lines = table.to_csv().splitlines()
    assert csv_lines[0].startswith("method,n,bleu,bleu_low,bleu_high")
    assert csv_lines[2].startswith("b,2,0.9,0.9,0.9")
    d = table.to_dict()
    assert d["methods"]["a"]["kl"]["mean"] == pytest.approx(2.0)
    assert "seconds" not in table.without_timing()["methods"]["a"]


def test_sequence_log10_ratio_is_the_paper_pr_in_log10():
    masked = torch.tensor([-1.0, -2.0, -0.5])
    original = torch.tensor([-0.5, -0.5, -0.5])
    expected = (-0.5 - 1.5 + 0.0) / math.log(10)
    assert sequence_log10_ratio(masked, original) == pytest.approx(expected)
    # the per-token PR is the geometric mean of the same ratios
    assert probability_ratio(masked, original) == pytest.approx(math.exp(-2.0 / 3))
