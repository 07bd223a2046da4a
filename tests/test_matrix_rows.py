"""Heatmap rows grouped by output word, sentence or line, by the method's rule read for rows."""

from __future__ import annotations

import math

import pytest

from promptxray import Attribution, PromptXrayError, Unit, explain
from promptxray.attribution import row_rule
from promptxray.methods.base import Aggregation

OUTPUT = "Hi there. Bye now.\nOk."
PIECES = ["Hi", " there", ".", " Bye", " now", ".", "\n", "Ok", "."]
# Two prompt words as columns; row t is (t + 1, -(t + 1)) so every group's value is known.
MATRIX = [[float(t + 1), -float(t + 1)] for t in range(len(PIECES))]


def known(method: str, aggregation: Aggregation, matrix: list[list[float]] = MATRIX) -> Attribution:
    """A hand-made result whose target tokens are PIECES (they concatenate to OUTPUT)."""
    prompt = "alpha beta"
    units = [Unit("alpha", "user", (0, 5), [0]), Unit(" beta", "user", (5, 10), [1])]
    return Attribution(
        prompt=prompt,
        system_prompt=None,
        output=OUTPUT,
        target_span=(0, len(OUTPUT)),
        target_tokens=list(PIECES),
        method=method,
        base_granularity="word",
        base_units=units,
        base_scores=[sum(r[0] for r in matrix), sum(r[1] for r in matrix)],
        base_matrix=matrix,
        aggregation=aggregation,
        signed=aggregation != Aggregation.NORM,
    )


def test_token_spans_walk_the_pieces_over_the_target():
    attr = known("grad_x_input", Aggregation.SUM)
    spans = attr.target_token_spans()
    assert [OUTPUT[a:b] for a, b in spans] == PIECES


@pytest.mark.parametrize(
    ("method", "aggregation"),
    [("grad_x_input", Aggregation.SUM), ("leave_one_out", Aggregation.FIXED)],
)
def test_additive_methods_sum_their_rows(method, aggregation):
    attr = known(method, aggregation)
    sentences = attr.matrix_rows("sentence")
    assert sentences.labels == ["Hi there.", "Bye now.", "Ok."]
    assert sentences.tokens == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert sentences.matrix == [[6.0, -6.0], [15.0, -15.0], [24.0, -24.0]]
    words = attr.matrix_rows("word")
    assert words.labels == ["Hi", "there.", "Bye", "now.", "Ok."]
    assert words.matrix[1] == [5.0, -5.0]  # " there" + "."
    assert words.matrix[4] == [7.0 + 8.0 + 9.0, -24.0]  # the newline joins the word after it
    lines = attr.matrix_rows("line")
    assert lines.labels == ["Hi there. Bye now.", "Ok."]
    # additive rows: all rows together are the unit scores (each unit's column sum)
    assert [sum(col) for col in zip(*lines.matrix, strict=True)] == attr.scores


def test_gradient_norms_combine_rows_by_their_norm():
    attr = known("grad_norm", Aggregation.NORM, [[abs(v) for v in r] for r in MATRIX])
    assert row_rule(attr.aggregation) == Aggregation.NORM
    rows = attr.matrix_rows("sentence").matrix
    assert rows[0] == pytest.approx([math.sqrt(1 + 4 + 9)] * 2)
    assert rows[2] == pytest.approx([math.sqrt(49 + 64 + 81)] * 2)


def test_token_rows_are_the_matrix_itself():
    attr = known("grad_x_input", Aggregation.SUM)
    rows = attr.matrix_rows("token")
    assert rows.matrix == attr.matrix and rows.labels == PIECES
    assert rows.tokens == [[t] for t in range(len(PIECES))]
    assert rows.spans[1] == (3, 8)  # " there" without its space


def test_rows_follow_the_columns_granularity():
    attr = known("grad_x_input", Aggregation.SUM).aggregate("sentence")
    rows = attr.matrix_rows("line")
    assert len(attr.units) == 1 and rows.matrix == [[0.0], [0.0]]  # (t+1) - (t+1) per row


def test_bad_row_grouping_and_missing_matrix():
    attr = known("grad_x_input", Aggregation.SUM)
    with pytest.raises(PromptXrayError, match="token, word, sentence, line"):
        attr.matrix_rows("paragraph")
    attr.base_matrix = None
    assert attr.matrix_rows("word") is None


def test_split_characters_share_one_row():
    """Byte-level tokens of one character decode to U+FFFD pieces; they still find their word."""
    attr = known("grad_x_input", Aggregation.SUM)
    attr.output = "I like 🍎 apples."
    attr.target_span = (0, len(attr.output))
    attr.target_tokens = ["I", " like", " \ufffd", "\ufffd", "\ufffd", " apples", "."]
    attr.base_matrix = [[1.0, 0.0]] * 7
    spans = attr.target_token_spans()
    assert spans[2:5] == [(6, 8)] * 3 and spans[5] == (8, 15)
    words = attr.matrix_rows("word")
    assert words.labels == ["I", "like", "🍎", "apples."]
    assert words.tokens[2] == [2, 3, 4] and words.matrix[2] == [3.0, 0.0]


def test_json_round_trip_is_unaffected():
    attr = known("leave_one_out", Aggregation.FIXED)
    data = attr.to_dict()
    assert "matrix_rows" not in data and "rows" not in data
    again = Attribution.from_json(attr.to_json())
    assert again == attr
    assert again.matrix_rows("sentence") == attr.matrix_rows("sentence")


# ----- a real result ------------------------------------------------------------------------

TARGET = "Blue is calm. Red is loud.\nGreen grows everywhere."


@pytest.mark.parametrize("method", ["grad_x_input", "grad_norm", "leave_one_out"])
def test_tiny_model_rows_group_by_the_rule(tiny_lm, method):
    attr = explain(
        "Describe three colours.", model=tiny_lm, method=method, target=TARGET, matrix=True
    )
    tokens = attr.matrix
    rule = row_rule(attr.aggregation)
    assert "".join(attr.target_tokens) == TARGET
    for by in ("word", "sentence", "line"):
        rows = attr.matrix_rows(by)
        assert [t for group in rows.tokens for t in group] == list(range(len(tokens)))
        for members, row in zip(rows.tokens, rows.matrix, strict=True):
            for c, value in enumerate(row):
                parts = [tokens[t][c] for t in members]
                expected = math.sqrt(sum(p * p for p in parts)) if rule == "norm" else sum(parts)
                assert value == pytest.approx(expected, abs=1e-9)
    sentences = attr.matrix_rows("sentence")
    assert sentences.labels == ["Blue is calm.", "Red is loud.", "Green grows everywhere."]
    assert [TARGET[a:b] for a, b in sentences.spans] == sentences.labels
    assert attr.matrix_rows("line").labels == [
        "Blue is calm. Red is loud.",
        "Green grows everywhere.",
    ]
    if rule == "sum":  # every row together is the whole target's score per unit
        totals = [sum(col) for col in zip(*attr.matrix_rows("line").matrix, strict=True)]
        assert totals == pytest.approx(attr.scores, rel=1e-3, abs=1e-4)
    assert attr.matrix_rows("token").matrix == tokens
