"""The heatmap of a long output over a long prompt: grouping chosen automatically and named."""

from __future__ import annotations

import re

import matplotlib.image
import numpy as np
import pytest
from typer.testing import CliRunner

from promptxray import Attribution, Unit
from promptxray.cli import app
from promptxray.methods.base import Aggregation
from promptxray.record import RunRecord
from promptxray.render import heatmap_figure, save_heatmap
from promptxray.render.heatmap import MAX_COLUMNS, MAX_ROWS, heatmap_layout

runner = CliRunner()


def long_output(n_tokens: int = 300, per_sentence: int = 15) -> list[str]:
    """Target pieces: sentences of `per_sentence` tokens, the last one ending in a full stop."""
    pieces = []
    for t in range(n_tokens):
        first = t % per_sentence == 0
        word = f"Word{t}" if t == 0 else (f" Word{t}" if first else f" w{t}")
        pieces.append(word + ("." if t % per_sentence == per_sentence - 1 else ""))
    return pieces


def long_result(
    method: str = "grad_x_input",
    aggregation: Aggregation = Aggregation.SUM,
    n_tokens: int = 300,
    n_words: int = 200,
) -> Attribution:
    """A synthetic 300-token x 200-word result (no model): ten-word prompt sentences."""
    words = [f"p{i}" + ("." if i % 10 == 9 else "") for i in range(n_words)]
    prompt = " ".join(words)
    units, cursor = [], 0
    for i, word in enumerate(words):
        start = prompt.index(word, cursor)
        span = (start - 1 if i else 0, start + len(word))  # a unit owns its leading space
        units.append(Unit(prompt[span[0] : span[1]], "user", span, [i]))
        cursor = start + len(word)
    pieces = long_output(n_tokens)
    output = "".join(pieces)
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(n_tokens, n_words))
    if aggregation == Aggregation.NORM:
        matrix = np.abs(matrix)
    return Attribution(
        prompt=prompt,
        system_prompt=None,
        output=output,
        target_span=(0, len(output)),
        target_tokens=pieces,
        method=method,
        base_granularity="word",
        base_units=units,
        base_scores=matrix.sum(0).tolist(),
        base_matrix=matrix.tolist(),
        aggregation=aggregation,
        signed=aggregation != Aggregation.NORM,
        record=RunRecord.from_flat({"model": "synthetic"}),
    )


def test_300_by_200_png_groups_rows_and_columns_automatically(tmp_path):
    attr = long_result()
    fig = heatmap_figure(attr)
    ax = fig.axes[0]
    title = ax.get_title()
    assert "rows: output sentences (auto, 300 tokens)" in title
    assert "columns: prompt sentences (auto, 200 word units)" in title
    data = ax.images[0].get_array()
    assert data.shape == (20, 20)  # 20 output sentences x 20 prompt sentences
    expected = np.array(heatmap_layout(attr).rows.matrix)
    drawn = np.abs(expected) >= 0.02 * np.abs(expected).max()  # the palette's near-zero rule
    assert np.allclose(data[drawn], expected[drawn]) and not data[~drawn].any()
    assert ax.get_ylabel() == "output sentences"
    assert ax.get_xlabel() == "source units (sentence)"
    first = [t.get_text() for t in ax.get_yticklabels()][0]
    assert first.startswith("Word0 w1") and first.endswith("…")  # the sentence, shortened
    # A cell is the sum of its 15 x 10 token-word cells (grad_x_input adds both ways).
    assert expected[1, 2] == pytest.approx(np.array(attr.base_matrix)[15:30, 20:30].sum())
    path = save_heatmap(attr, tmp_path / "large.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(path).shape[:2]
    assert 500 < width < 3000 and 500 < height < 3000  # one readable picture, not a poster


def test_rows_can_be_forced_and_small_results_stay_tokens():
    attr = long_result()
    words = heatmap_figure(attr, rows="word", columns="keep").axes[0]
    assert words.images[0].get_array().shape == (300, 200)  # every token is its own word here
    assert words.get_title().endswith("\nrows: output words (300 tokens)")  # asked, not auto
    small = long_result(n_tokens=MAX_ROWS, n_words=MAX_COLUMNS)
    ax = heatmap_figure(small).axes[0]
    assert ax.images[0].get_array().shape == (MAX_ROWS, MAX_COLUMNS)
    assert ax.get_title() == "grad_x_input · word · synthetic"
    assert ax.get_ylabel() == "target tokens"


def test_gradient_norm_rows_combine_by_norm():
    attr = long_result("grad_norm", Aggregation.NORM)
    data = heatmap_figure(attr).axes[0].images[0].get_array()
    block = np.array(attr.base_matrix)[:15, :10]
    assert data[0, 0] == pytest.approx(np.sqrt((block**2).sum()))


def test_a_result_on_whole_units_keeps_its_columns_and_says_so():
    attr = long_result("leave_one_out", Aggregation.FIXED)
    ax = heatmap_figure(attr).axes[0]
    title = ax.get_title()
    assert "columns: 200 word units (kept: leave_one_out cannot regroup)" in title
    assert "rows: output sentences (auto, 300 tokens)" in title
    assert ax.images[0].get_array().shape == (20, 200)


def test_bad_row_choice_is_refused():
    with pytest.raises(Exception, match="auto, token, word, sentence, line"):
        heatmap_figure(long_result(n_tokens=3, n_words=2), rows="paragraph")


def test_cli_checks_rows_before_loading(monkeypatch, tmp_path):
    monkeypatch.setattr(
        "promptxray.cli.common.load_lm", lambda *a, **k: pytest.fail("loaded a model")
    )
    out = tmp_path / "h.png"
    result = runner.invoke(app, ["heatmap", "hi", "--out", str(out), "--rows", "page"])
    assert result.exit_code == 2 and "--rows is one of" in result.stderr


def test_cli_passes_the_row_grouping(monkeypatch, tiny_lm, tmp_path):
    monkeypatch.setattr(
        "promptxray.cli.common.load_lm", lambda name, progress=None, **placement: tiny_lm
    )
    out = tmp_path / "h.png"
    result = runner.invoke(
        app,
        [
            "heatmap",
            "Say it.",
            "--out",
            str(out),
            "--target",
            "One two. Three.",
            "--rows",
            "sentence",
        ],
    )
    assert result.exit_code == 0, result.output
    assert re.search(
        r"\d+ target tokens x 2 word units\); drawn with rows: output sentences", result.stdout
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_payload_groups_rows_on_the_server():
    from promptxray.server.views import explanation_view

    attr = long_result(n_tokens=45, n_words=20)
    tokens = explanation_view("e", "r", attr, {})
    sentences = explanation_view("e", "r", attr, {}, rows="sentence")
    assert tokens["matrix_rows"]["by"] == "token" and len(tokens["matrix"]) == 45
    assert sentences["matrix_rows"]["tokens"] == [list(range(s, s + 15)) for s in (0, 15, 30)]
    assert sentences["matrix"] == attr.matrix_rows("sentence").matrix
    peak = max(abs(v) for row in sentences["matrix"] for v in row)
    assert sentences["matrix_palette"]["peak"] == pytest.approx(peak)  # scaled to what is drawn
    with pytest.raises(Exception, match="token, word, sentence, line"):
        explanation_view("e", "r", attr, {}, rows="page")
