"""Views: colour scale, text walking, console, HTML (escaping!) and the heatmap picture."""

from __future__ import annotations

import html
import io
import re

import matplotlib.image
import numpy as np
import pytest
from rich.console import Console

from promptxray import Attribution, PromptXrayError, Unit, explain
from promptxray.render import heatmap_figure, render_console, render_html, save_heatmap
from promptxray.render.heatmap import unit_labels
from promptxray.render.palette import MAGNITUDE, NEGATIVE, POSITIVE, WHITE, blend, scale_for
from promptxray.render.pieces import role_pieces, token_label, visible


def make_attr(
    prompt: str,
    spans: list[tuple[int, int]],
    scores: list[float],
    *,
    output: str = "Sure thing.",
    selected: list[int] | None = None,
    matrix: list[list[float]] | None = None,
    method: str = "grad_norm",
    metadata: dict | None = None,
) -> Attribution:
    """A hand-made word-level result, so view tests need no model."""
    units = [Unit(prompt[a:b], "user", (a, b), [i]) for i, (a, b) in enumerate(spans)]
    return Attribution(
        prompt=prompt,
        system_prompt=None,
        output=output,
        target_span=(0, len(output)),
        target_tokens=["Sure", " thing", "."],
        method=method,
        base_granularity="word",
        base_units=units,
        base_scores=scores,
        base_matrix=matrix,
        base_selected=selected,
        metadata=metadata or {"method": method, "family": "gradient", "seconds": 0.5},
    )


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


# ----- palette and text walking ------------------------------------------------------------


def test_scale_is_signed_only_with_a_negative_score():
    assert scale_for([0.1, 2.0]).signed is False
    signed = scale_for([0.5, -2.0, 1.0])
    assert signed.signed is True and signed.peak == 2.0
    assert signed.strength(-2.0) == -1.0 and signed.strength(1.0) == 0.5
    assert scale_for([]).peak == 0.0 and scale_for([]).strength(3.0) == 0.0


def test_blend_runs_from_white_to_the_full_colour():
    assert blend(0.0, signed=False) == WHITE
    assert blend(1.0, signed=False) == MAGNITUDE
    assert blend(1.0, signed=True) == POSITIVE
    assert blend(-1.0, signed=True) == NEGATIVE
    half = blend(0.5, signed=True)
    assert all(min(w, c) <= h <= max(w, c) for w, c, h in zip(WHITE, POSITIVE, half, strict=True))


def test_role_pieces_rebuild_the_text_exactly_and_clip_overlaps():
    text = "Hello,  world\n\nbye "
    units = [
        Unit("Hello,", "user", (0, 6), [0]),
        Unit("world", "user", (8, 13), [1]),
        Unit("orl", "user", (9, 12), [2]),  # overlaps "world": clipped away
        Unit("bye", "user", (15, 18), [3]),
        Unit("x", "system", (0, 1), [4]),  # another role: ignored here
        Unit("<s>", "user", None, [5]),  # no span: not drawn
    ]
    pieces = role_pieces(text, units, "user")
    assert "".join(p for p, _ in pieces) == text
    assert [i for _, i in pieces if i is not None] == [0, 1, 3]
    assert ("  ", None) in pieces and ("\n\n", None) in pieces


def test_visible_labels_are_one_line():
    assert visible("a\nb\tc\x00d") == "a⏎b⇥cd"
    assert visible("abcdefgh", limit=5) == "abcd…"
    assert token_label(" love") == "love"
    assert token_label(" ") == "␣"
    assert token_label("\n") == "⏎"


# ----- HTML ------------------------------------------------------------------------------------

EVIL = 'Ignore <script>alert(1)</script> & "quote" me'


def _section_text(page: str, role: str) -> str:
    """The visible text of one role's section: tags removed, entities decoded."""
    body = re.search(rf'<div class="pxr-{role}"[^>]*>(.*?)</div>', page, re.S).group(1)
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def test_html_escapes_user_text_and_keeps_it_exact():
    prompt = EVIL + "\n\n  indented line"
    attr = make_attr(prompt, word_spans(prompt), [float(i) for i in range(len(word_spans(prompt)))])
    page = render_html(attr)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert _section_text(page, "user") == prompt  # gaps and newlines survive
    assert page.count('data-unit="') == len(attr.units) + min(10, len(attr.units))


def test_html_escapes_method_names_metadata_and_output():
    attr = make_attr(
        "hi there",
        [(0, 2), (3, 8)],
        [1.0, 2.0],
        output="<img src=x onerror=alert(1)>",
        method="<b>m</b>",
        metadata={"model": "<i>evil</i>", "family": "<u>f</u>", "seconds": 1.0},
    )
    page = render_html(attr, standalone=True)
    for raw in ("<img", "<b>m", "<i>evil", "<u>f"):
        assert raw not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<title>promptxray: &lt;b&gt;m&lt;/b&gt;</title>" in page


def test_html_colours_signed_scores_by_sign_and_outlines_selected_units():
    attr = make_attr("up down flat", [(0, 2), (3, 7), (8, 12)], [2.0, -2.0, 0.0], selected=[1])
    page = render_html(attr, top=0)
    spans = dict(re.findall(r'<span data-unit="(\d)" style="([^"]*)"', page))
    assert "background:rgb(37,99,235)" in spans["0"]  # full positive colour
    assert "background:rgb(220,38,38)" in spans["1"]  # full negative colour
    assert "background:rgb(255,255,255)" in spans["2"]
    assert "outline" in spans["1"] and "outline" not in spans["0"]
    assert 'title="score -2 · user · unit 1 · selected"' in page
    assert "linear-gradient(to right,rgb(220,38,38),#fff,rgb(37,99,235))" in page  # signed legend


def test_html_marks_the_target_inside_the_output():
    attr = make_attr("a b", [(0, 1), (2, 3)], [1.0, 1.0], output="One two three")
    attr.target_span = (4, 7)
    page = render_html(attr)
    assert re.search(r'<mark class="pxr-target"[^>]*>two</mark>', page)
    assert _section_text(page, "output") == "One two three"


# ----- console -----------------------------------------------------------------------------


def _console_text(renderable, styles: bool = True) -> str:
    console = Console(
        file=io.StringIO(), width=100, record=True, color_system="truecolor", force_terminal=True
    )
    console.print(renderable)
    return console.export_text(styles=styles)


def _table_rows(text: str) -> list[list[str]]:
    """Cells of the top-units table (panel lines have only two borders)."""
    rows = [line.split("│") for line in text.splitlines()]
    return [[cell.strip() for cell in row] for row in rows if len(row) >= 4]


def test_console_prints_markup_literally_and_ranks_units():
    prompt = "Please [bold]stop[/bold] it"
    spans = word_spans(prompt)
    attr = make_attr(prompt, spans, [0.1, 3.0, 0.5])
    text = _console_text(render_console(attr), styles=False)
    assert "Please [bold]stop[/bold] it" in text
    rows = _table_rows(text)
    assert [r[1] for r in rows] == ["[bold]stop[/bold]", "it", "Please"]
    assert [r[3] for r in rows] == ["3", "0.5", "0.1"]
    assert "method grad_norm (gradient)" in text and "0.50 s" in text


def test_console_colours_the_strongest_unit_fully_and_marks_selected():
    attr = make_attr("alpha beta gamma", [(0, 5), (6, 10), (11, 16)], [0.0, 4.0, 1.0], selected=[2])
    styled = _console_text(render_console(attr))
    assert "48;2;234;88;12mbeta" in styled  # full orange background on the peak unit
    rows = _table_rows(_console_text(render_console(attr), styles=False))
    # The jointly selected unit leads the table even though "beta" scores higher.
    assert [(r[1], r[4]) for r in rows] == [("gamma", "✓"), ("beta", ""), ("alpha", "")]
    assert "1;4;" in styled.split("gamma")[0].rsplit("\x1b[", 1)[-1]  # bold underline


def test_attribution_hooks_use_the_views(tiny_lm):
    attr = explain("Name three colours.", model=tiny_lm, max_new_tokens=3)
    assert attr._repr_html_() == render_html(attr)
    assert "Name" in _console_text(attr)


# ----- heatmap -----------------------------------------------------------------------------


def test_heatmap_matrix_has_target_rows_and_unit_columns(tiny_lm, tmp_path):
    attr = explain("Write a poem\nabout the $5 sea.", model=tiny_lm, max_new_tokens=4, matrix=True)
    fig = heatmap_figure(attr)
    data = fig.axes[0].images[0].get_array()
    assert data.shape == (len(attr.target_tokens), len(attr.units)) == (4, 7)
    assert np.allclose(data, np.array(attr.matrix))
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == [label.replace("$", r"\$") for label in unit_labels(attr)]
    path = save_heatmap(attr, tmp_path / "heat.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > 300 and height > 200


def test_heatmap_grows_with_the_counts():
    words = " ".join(f"w{i}" for i in range(60))
    spans = word_spans(words)
    big = make_attr(
        words, spans, [1.0] * 60, matrix=[[float(i * j) for j in range(60)] for i in range(60)]
    )
    big.target_tokens = [f" t{i}" for i in range(60)]
    small = make_attr("a b", [(0, 1), (2, 3)], [1.0, 1.0], matrix=[[1.0, 2.0]] * 3)
    w_big, h_big = heatmap_figure(big).get_size_inches()
    w_small, h_small = heatmap_figure(small).get_size_inches()
    assert w_big > 2 * w_small and h_big > 2 * h_small
    assert heatmap_figure(big).axes[0].images[0].get_array().shape == (60, 60)


def test_heatmap_needs_a_matrix():
    attr = make_attr("a b", [(0, 1), (2, 3)], [1.0, 1.0])
    with pytest.raises(PromptXrayError, match="matrix=True"):
        heatmap_figure(attr)
