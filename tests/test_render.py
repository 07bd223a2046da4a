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
from promptxray.record import RunRecord
from promptxray.render import heatmap_figure, render_console, render_html, save_heatmap
from promptxray.render.heatmap import unit_labels
from promptxray.render.palette import (
    CENTER,
    N_STOPS,
    NEAR_ZERO,
    SIGNED_CMAP,
    SIGNED_STOPS,
    UNSIGNED_CMAP,
    UNSIGNED_STOPS,
    WHITE,
    css,
    legend_text,
    palette_payload,
    scale_for,
)
from promptxray.render.pieces import role_pieces, token_label, visible
from promptxray.server.views import explanation_view


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
    signed: bool = False,
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
        signed=signed,
        record=RunRecord.from_flat(metadata or {"family": "gradient", "seconds": 0.5}),
    )


def word_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


# ----- palette and text walking ------------------------------------------------------------


def _luminance(rgb: tuple[int, int, int]) -> float:
    r, g, b = rgb
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_stops_are_the_matplotlib_maps_sampled_once_with_a_white_zero():
    import matplotlib

    for name, stops, zero in (
        (SIGNED_CMAP, SIGNED_STOPS, CENTER),
        (UNSIGNED_CMAP, UNSIGNED_STOPS, 0),
    ):
        cmap = matplotlib.colormaps[name]
        sampled = [tuple(round(255 * c) for c in cmap(x)[:3]) for x in np.linspace(0, 1, N_STOPS)]
        assert len(stops) == N_STOPS
        assert stops[zero] == WHITE
        assert [s for i, s in enumerate(stops) if i != zero] == [
            s for i, s in enumerate(sampled) if i != zero
        ]


def test_signedness_is_given_by_the_method_not_the_data():
    # All-positive scores of a signed method still use the diverging map around 0.
    signed = scale_for([0.5, 2.0, 1.0], signed=True)
    assert signed.signed and signed.peak == 2.0 and signed.domain == (-2.0, 2.0)
    assert signed.color(0.0) == WHITE and signed.color(2.0) == SIGNED_STOPS[-1]
    assert signed.strength(-2.0) == -1.0 and signed.strength(1.0) == 0.5
    unsigned = scale_for([0.5, -2.0], signed=False)
    assert not unsigned.signed and unsigned.domain == (0.0, 2.0)
    assert unsigned.color(-2.0) == WHITE  # below the domain: clipped, like matplotlib
    for empty in (scale_for([], signed=True), scale_for([0.0, 0.0], signed=False)):
        assert empty.peak == 0.0 and empty.strength(3.0) == 0.0 and empty.color(3.0) == WHITE


def test_signed_map_is_red_for_plus_and_blue_for_minus():
    scale = scale_for([-4.0, 4.0], signed=True)
    red, blue = scale.color(4.0), scale.color(-4.0)
    assert red[0] > 90 and red[0] > 2 * red[2]  # + = red: raises p(target)
    assert blue[2] > 90 and blue[2] > 2 * blue[0]  # − = blue: lowers p(target)
    assert scale.color(4.0) == SIGNED_STOPS[-1] and scale.color(-4.0) == SIGNED_STOPS[0]
    # symmetric: equal magnitudes are equally far from white
    for v in (0.5, 1.0, 2.0, 3.0):
        assert scale.index(v) - CENTER == CENTER - scale.index(-v)
    assert "red raises p(target), blue lowers it" == legend_text(True)


@pytest.mark.parametrize("signed", [True, False])
def test_near_zero_values_get_no_tint_and_gamma_bends_the_rest(signed):
    scale = scale_for([10.0, 0.1], signed=signed)
    neutral = WHITE
    # below 2% of the peak: plain, in every view that colours through a Scale
    assert scale.color(10.0 * NEAR_ZERO * 0.99) == neutral and not scale.tinted(0.15)
    assert scale.color(0.5) != neutral and scale.tinted(0.5)
    # gamma < 1 brings weak values out, gamma > 1 fades them; the ends stay put
    soft, hard = scale_for([10.0], signed, gamma=0.5), scale_for([10.0], signed, gamma=2.0)
    assert soft.index(2.0) > scale.index(2.0) > hard.index(2.0)
    assert soft.color(10.0) == scale.color(10.0) == hard.color(10.0)
    assert scale_for([1.0], signed, gamma=100).gamma == 5.0  # clamped to the control's range


def test_unsigned_map_is_sequential():
    scale = scale_for([0.0, 1.0, 2.0, 3.0, 4.0], signed=False)
    values = np.linspace(0.0, 4.0, 200)
    shades = [_luminance(scale.color(v)) for v in values]
    assert all(a >= b for a, b in zip(shades, shades[1:], strict=False))  # darker as it grows
    assert scale.color(0.0) == WHITE and scale.color(4.0) == UNSIGNED_STOPS[-1]
    hues = [scale.color(v) for v in values[1:]]
    assert all(r >= g >= b for r, g, b in hues)  # one hue (orange), no second colour
    assert palette_payload(scale) == {
        "signed": False,
        "peak": 4.0,
        "peak_label": "4",
        "stops": [css(s) for s in UNSIGNED_STOPS],
        "legend": legend_text(False),
        "caption": "darker = stronger influence (unsigned) · full colour at 4",
        "gamma": 1.0,
        "floor": NEAR_ZERO,
    }


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
    attr = make_attr(
        "up down flat", [(0, 2), (3, 7), (8, 12)], [2.0, -2.0, 0.0], selected=[1], signed=True
    )
    page = render_html(attr, top=0)
    spans = dict(re.findall(r'<span data-unit="(\d)" style="([^"]*)"', page))
    assert f"background:{css(SIGNED_STOPS[-1])}" in spans["0"]  # full red: raises p(target)
    assert f"background:{css(SIGNED_STOPS[0])}" in spans["1"]  # full blue: lowers it
    assert "background:rgb(255, 255, 255)" in spans["2"]
    assert "outline" in spans["1"] and "outline" not in spans["0"]
    assert 'title="score -2 · user · unit 1 · selected"' in page
    bar = "linear-gradient(to right," + ",".join(css(c) for c in SIGNED_STOPS) + ")"
    assert bar in page  # the legend is drawn from the same stops
    assert "red raises p(target), blue lowers it · full colour at ±2" in page


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
    r, g, b = UNSIGNED_STOPS[-1]
    assert f"48;2;{r};{g};{b}mbeta" in styled  # the darkest orange on the peak unit
    rows = _table_rows(_console_text(render_console(attr), styles=False))
    # The jointly selected unit leads the table even though "beta" scores higher.
    assert [(r[1], r[4]) for r in rows] == [("gamma", "✓"), ("beta", ""), ("alpha", "")]
    assert "1;4;" in styled.split("gamma")[0].rsplit("\x1b[", 1)[-1]  # bold underline


def test_console_lists_signed_scores_by_magnitude_with_their_sign():
    attr = make_attr("aa bb cc dd", word_spans("aa bb cc dd"), [0.5, -3.0, 2.0, 0.0], signed=True)
    rows = _table_rows(_console_text(render_console(attr), styles=False))
    assert [(r[1], r[3]) for r in rows] == [
        ("bb", "-3"),
        ("cc", "+2"),
        ("aa", "+0.5"),
        ("dd", "+0"),
    ]
    assert attr.ranking(by="support")[:2] == [2, 0]  # what mask-top-k removes differs


# ----- one palette for every view ------------------------------------------------------------


def _html_colours(page: str) -> dict[int, str]:
    """The background of each unit span in the prompt section (the first span per unit)."""
    found: dict[int, str] = {}
    for index, style in re.findall(r'<span data-unit="(\d+)" style="([^"]*)"', page):
        found.setdefault(int(index), re.search(r"background:(rgb\([^)]*\))", style).group(1))
    return found


def _console_background(styled: str, text: str) -> str | None:
    """The truecolor background the terminal view gives the first occurrence of `text`."""
    match = re.search(r"48;2;(\d+);(\d+);(\d+)(?:;[\d;]*)?m" + re.escape(text), styled)
    return None if match is None else f"rgb({match[1]}, {match[2]}, {match[3]})"


@pytest.mark.parametrize("signed", [True, False])
def test_html_console_and_heatmap_give_a_score_the_same_rgb(signed):
    words = ["alpha", "bravo", "charlie", "delta", "echo"]
    prompt = " ".join(words)
    scores = [3.0, -1.5, 0.75, 2.2, 0.0] if signed else [3.0, 1.5, 0.75, 2.2, 0.0]
    matrix = [scores, [s / 2 for s in scores], [s / 3 for s in scores]]  # same peak: 3
    attr = make_attr(prompt, word_spans(prompt), scores, matrix=matrix, signed=signed)
    scale = scale_for(scores, signed=signed)

    html_bg = _html_colours(render_html(attr, top=0))
    styled = _console_text(render_console(attr, top=0))
    image = heatmap_figure(attr).axes[0].images[0]
    for i, (word, score) in enumerate(zip(words, scores, strict=True)):
        expected = css(scale.color(score))
        assert html_bg[i] == expected
        rgba = image.to_rgba(np.array([[score]]), bytes=True)[0, 0]
        assert css(tuple(int(c) for c in rgba[:3])) == expected  # heatmap cell
        if abs(scale.strength(score)) >= 0.05:  # the terminal leaves near-zero units plain
            assert _console_background(styled, word) == expected
    assert html_bg[0] == css(scale.stops[-1])  # the peak gets the full colour everywhere


@pytest.mark.parametrize("signed", [True, False])
def test_every_legend_uses_the_same_words_and_states_the_peak(signed):
    scores = [2.5, -1.0, 0.5] if signed else [2.5, 1.0, 0.5]
    attr = make_attr("one two three", word_spans("one two three"), scores, signed=signed)
    attr.base_matrix = [scores, scores, scores]  # cells peak where the units do: one caption
    caption = scale_for(scores, signed=signed).caption()
    assert caption.startswith(legend_text(signed)) and "2.5" in caption
    console = _console_text(render_console(attr), styles=False)
    page = render_html(attr)
    label = heatmap_figure(attr).axes[-1].get_ylabel()
    assert caption in " ".join(console.split())
    assert html.escape(caption) in page
    assert label == caption
    other = legend_text(not signed)
    assert other not in console and html.escape(other) not in page and other not in label


def test_page_payload_carries_the_export_colours_and_both_orders():
    attr = make_attr(
        "up down flat side",
        word_spans("up down flat side"),
        [1.0, -4.0, 0.0, 2.0],
        matrix=[[1.0, -8.0, 0.0, 2.0]],
        signed=True,
    )
    view = explanation_view("e1", "r1", attr, {"method": "grad_x_input"})
    page_colours = _html_colours(render_html(attr, top=0))
    assert [u["color"] for u in view["units"]] == [page_colours[i] for i in range(4)]
    assert view["units"][1]["text_color"] == "rgb(255, 255, 255)"  # white on dark blue
    assert view["palette"] == palette_payload(scale_for(attr.scores, signed=True))
    assert view["palette"]["stops"][CENTER] == "rgb(255, 255, 255)"
    assert view["matrix_palette"]["peak"] == 8.0 and view["matrix_palette"]["signed"] is True
    assert (view["signed"], view["max_abs"]) == (True, 4.0)
    assert view["top"] == attr.ranking(by="magnitude") == [1, 3, 0, 2]
    assert view["removal"] == attr.ranking(by="support") == [3, 0, 2, 1]
    unsigned = explanation_view("e2", "r1", make_attr("a b", [(0, 1), (2, 3)], [1.0, 2.0]), {})
    assert unsigned["signed"] is False and unsigned["matrix_palette"] is None
    assert unsigned["palette"]["legend"] == legend_text(False)


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
