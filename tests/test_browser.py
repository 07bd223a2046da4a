"""End to end in a real Chromium: type, generate, select a span, explain, regroup, mask, reload.

Runs the real server (`serve_in_thread`: uvicorn in a thread, 127.0.0.1, a free port;
the fixtures are in browser_fixtures.py) on the tiny model, so it is about the page
and the API together, not about model quality.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import pytest
from browser_helpers import backgrounds, drag_select, generate_in_page, open_page

from promptxray import Attribution
from promptxray.render.palette import css, scale_for

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
PROMPT = f"The sea is calm tonight. Write one line about the sky {XSS}.\nKeep it short."


def test_debugger_flow_in_chromium(page, server_url, tmp_path):
    from playwright.sync_api import expect

    open_page(page, server_url)
    expect(page.locator("#history-empty")).to_be_visible()
    page.screenshot(path=str(tmp_path / "start.png"))

    # 1. type a prompt (with markup in it) and generate
    page.fill("#prompt", PROMPT)
    page.fill("#max-new", "16")
    page.click("#generate")
    expect(page.locator("#job")).to_be_hidden()
    output = page.locator("#output").inner_text()
    assert output.strip(), "the model wrote nothing"
    expect(page.locator("#history-list li")).to_have_count(1)

    # 2. select the second half of the output with the mouse
    words = list(re.finditer(r"\S+", output))
    start = words[len(words) // 2].start()
    drag_select(page, "#output", start, len(output.rstrip()))
    expect(page.locator("#selection-info")).to_contain_text("Explaining characters")
    span_text = page.locator("#output mark.selected-span").inner_text()
    assert span_text.strip() and span_text.strip() in output

    # 3. explain it (with the heatmap): the prompt gets coloured units
    page.check("#matrix")
    page.click("#explain")
    expect(page.locator("#result-card")).to_be_visible()
    expect(page.locator("#job")).to_be_hidden()
    units = page.locator("#sal-prompt .unit")
    assert units.count() == len(PROMPT.split())
    top = page.locator("#top-list li").first.locator(".top-text").inner_text()
    coloured = page.locator("#sal-prompt .unit, #sal-output .unit").evaluate_all(
        "nodes => nodes.filter(n => getComputedStyle(n).backgroundColor !== 'rgba(0, 0, 0, 0)')"
        ".map(n => n.textContent)"
    )
    assert top in coloured
    assert re.match(r"score \S+ · rank \d+", units.first.get_attribute("title"))
    expect(page.locator("#legend .legend-bar")).to_be_visible()
    expect(page.locator("#sal-output mark.target")).to_have_text(span_text)

    # the markup in the prompt is text, not an element (and no dialog ever opened)
    assert XSS in page.locator("#sal-prompt").inner_text()
    assert "the sky <img src=x" in page.locator("#history-list").inner_text()
    assert page.locator("img").count() == 0

    # heatmap: one row per explained token, one column per unit
    page.click("#tab-heatmap")
    n_units = page.locator("#sal-prompt .unit, #sal-output .unit").count()
    rows = page.locator("#heatmap tbody tr")
    assert rows.count() >= 1
    assert rows.first.locator("td").count() == n_units
    page.locator("#result-card").screenshot(path=str(tmp_path / "heatmap.png"))
    page.click("#tab-text")

    # 4. switch to sentences: regrouped on the server, no recompute
    page.select_option("#granularity", "sentence")
    expect(page.locator("#result-meta")).to_contain_text("sentence (computed on tokens)")
    sentences = page.locator("#sal-prompt .unit").all_inner_texts()
    assert sentences == [
        "The sea is calm tonight.",
        f"Write one line about the sky {XSS}.",
        "Keep it short.",
    ]

    # clicking units picks them for masking; Clear drops the picks
    page.locator("#sal-prompt .unit").first.click()
    expect(page.locator("#mask-picked")).to_have_text("Remove picked (1)")
    expect(page.locator("#sal-prompt .unit.picked")).to_have_count(1)
    page.click("#clear-picked")
    expect(page.locator("#mask-picked")).to_be_disabled()

    # 5. mask the top 3 and regenerate; the page says beforehand which units that removes
    page.fill("#mask-k", "3")
    expect(page.locator("#removal-preview .chip")).to_have_count(3)
    to_remove = [
        page.locator(f'.salience .unit[data-index="{i}"]').inner_text()
        for i in page.locator("#removal-preview .chip").evaluate_all(
            "nodes => nodes.map(n => n.dataset.index)"
        )
    ]
    page.click("#mask-top")
    expect(page.locator("#mask-result")).to_be_visible()
    expect(page.locator("#job")).to_be_hidden()
    assert float(page.locator("#metric-pr").inner_text()) > 0
    assert float(page.locator("#metric-kl").inner_text()) >= 0
    assert page.locator("#masked-units .chip").count() == 3
    assert sorted(page.locator("#masked-units .chip").all_inner_texts()) == sorted(to_remove)
    assert page.locator("#diff-after").inner_text().strip()
    page.screenshot(path=str(tmp_path / "debugger.png"), full_page=True)

    # 6. reload: the run comes back from the history, with its explanation and edit
    page.reload()
    expect(page.locator("#history-list li")).to_have_count(1)
    expect(page.locator("#history-list li.current")).to_contain_text("The sea is calm")
    expect(page.locator("#prompt")).to_have_value(PROMPT)
    expect(page.locator("#result-card")).to_be_visible()
    expect(page.locator("#mask-result")).to_be_visible()
    page.click("#new-run")
    expect(page.locator("#result-card")).to_be_hidden()
    page.click("#history-list .history-open")
    expect(page.locator("#output")).to_contain_text(span_text)
    expect(page.locator("#sal-prompt .unit").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "reopened.png"), full_page=True)
    if os.environ.get("PROMPTXRAY_SCREENSHOTS"):
        keep = Path(os.environ["PROMPTXRAY_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("start.png", "debugger.png", "heatmap.png", "reopened.png"):
            shutil.copy(tmp_path / name, keep / name)
    assert page.problems == []


def test_bad_input_shows_a_message_not_a_crash(page, server_url):
    from playwright.sync_api import expect

    open_page(page, server_url)
    page.fill("#prompt", "word " * 600)
    page.click("#generate")
    expect(page.locator("#error")).to_contain_text("this model reads at most 512")
    expect(page.locator("#generate")).to_be_enabled()
    assert page.problems == []


def test_a_queued_job_shows_its_place_and_can_be_cancelled(page, server_url, served_app):
    from playwright.sync_api import expect

    jobs = served_app.state.jobs
    release = threading.Event()
    blocker = jobs.submit("block", lambda ctx: release.wait(60))
    try:
        open_page(page, server_url)
        page.fill("#prompt", "Count to three.")
        page.click("#generate")
        expect(page.locator("#job-label")).to_contain_text("queued behind 1 job")
        expect(page.locator("#explain")).to_be_disabled()
        page.click("#job-cancel")
        # a cancel is the user's choice: a neutral notice, not a red error
        expect(page.locator("#notice")).to_contain_text("Generating was cancelled")
        expect(page.locator("#error")).to_be_hidden()
        expect(page.locator("#job")).to_be_hidden()
        expect(page.locator("#generate")).to_be_enabled()
    finally:
        release.set()
    assert jobs.wait(blocker.id).status == "done"
    assert page.problems == []


def test_perturbation_and_joint_methods_in_the_page(page, server_url):
    from playwright.sync_api import expect

    from promptxray.methods import REGISTRY

    if not {"leave_one_out", "xprompt"} <= set(REGISTRY):
        pytest.skip("leave_one_out / xprompt are not registered in this checkout")
    open_page(page, server_url)
    generate_in_page(page, "Red apples grow on tall trees. Bananas are yellow.", 6)

    # leave-one-out masks whole words: it can be regrouped coarser, never finer
    # the form offers the method's own parameters, from /api/info (batch size is not offered)
    page.select_option("#method", "leave_one_out")
    expect(page.locator("#param-masking-field")).to_be_visible()
    expect(page.locator("#param-k-field")).to_have_count(0)
    expect(page.locator("#param-batch_size")).to_have_count(0)
    page.select_option("#param-masking", "replace")
    page.click("#explain")
    expect(page.locator("#result-meta")).to_contain_text("leave_one_out · word")
    expect(page.locator("#result-meta")).to_contain_text("masking: replace")
    expect(page.locator("#sal-prompt .unit")).to_have_count(9)

    # a result computed by masking whole words has no token scores: 409, and one click
    # recomputes it at tokens with the same method and parameters
    page.select_option("#granularity", "token")
    expect(page.locator("#error")).to_contain_text("no scores for token units")
    expect(page.locator("#sal-prompt .unit")).to_have_count(9)  # the word view stays
    recompute = page.locator("#error-action")
    expect(recompute).to_have_text("Recompute at token")
    recompute.click()
    expect(page.locator("#result-meta")).to_contain_text("leave_one_out · token")
    expect(page.locator("#result-meta")).to_contain_text("masking: replace")
    assert page.locator("#sal-prompt .unit").count() > 9
    assert page.locator("#error").is_hidden()

    # xprompt chooses k units jointly; they are underlined and lead the top list
    page.select_option("#granularity", "word")
    expect(page.locator("#error")).to_contain_text("Recompute at word")
    page.select_option("#method", "xprompt")
    expect(page.locator("#param-k-field")).to_be_visible()
    page.fill("#param-k", "2")
    page.click("#explain")
    expect(page.locator("#result-meta")).to_contain_text("xprompt · word")
    expect(page.locator("#sal-prompt .unit.chosen")).to_have_count(2)
    expect(page.locator("#legend")).to_contain_text("2 units xprompt chose together")
    expect(page.locator("#top-list li.chosen")).to_have_count(2)
    assert page.locator("#error").is_hidden()
    assert page.problems == []


def _export_backgrounds(server_url: str, explanation_id: str) -> tuple[dict[int, str], str]:
    """Unit index -> background of its span in the HTML export, and the export's legend."""
    url = f"{server_url}/api/explanations/{explanation_id}/export?format=html"
    with urllib.request.urlopen(url) as response:
        page = response.read().decode()
    colours: dict[int, str] = {}
    for index, style in re.findall(r'<span data-unit="(\d+)" style="([^"]*)"', page):
        colours.setdefault(int(index), re.search(r"background:(rgb\([^)]*\))", style).group(1))
    caption = re.search(r'<span class="pxr-caption">([^<]*)</span>', page).group(1)
    return colours, html.unescape(caption)


@pytest.mark.parametrize("method", ["grad_x_input", "grad_norm", "attnlrp"])  # signed, unsigned
def test_page_colours_units_as_the_html_export_does(page, server_url, method):
    from playwright.sync_api import expect

    open_page(page, server_url)
    generate_in_page(page, "Tell me about green hills and quiet rivers, please.", 6)
    page.select_option("#method", method)
    page.check("#matrix")
    page.click("#explain")
    expect(page.locator("#result-meta")).to_contain_text(f"{method} · word")
    explanation_id = page.locator("#result-card").get_attribute("data-explanation")

    exported, caption = _export_backgrounds(server_url, explanation_id)
    shown = page.locator("#sal-prompt .unit, #sal-output .unit").evaluate_all(
        "nodes => nodes.map(n => [Number(n.dataset.index), getComputedStyle(n).backgroundColor])"
    )
    assert len(shown) == len(exported) > 3
    for index, colour in shown:
        assert colour == exported[index], f"unit {index}"
    assert any(colour != "rgb(255, 255, 255)" for _, colour in shown)
    strongest = int(page.locator("#top-list li").first.get_attribute("data-index"))
    assert dict(shown)[strongest] == exported[strongest]
    # the legend says the same words, scaled to the same peak
    expect(page.locator("#legend-caption")).to_have_text(caption)
    signed = "red raises p(target), blue lowers it"
    assert (signed in caption) == (method != "grad_norm")

    # heatmap cells: the page's colour rule on the server's palette = the Python scale
    url = f"{server_url}/api/explanations/{explanation_id}/export?format=json&granularity=word"
    with urllib.request.urlopen(url) as response:
        attr = Attribution.from_json(response.read().decode())
    cells = [v for row in attr.matrix for v in row]
    scale = scale_for(cells, signed=attr.signed)
    page.click("#tab-heatmap")
    drawn = backgrounds(page, "#heatmap tbody td")
    assert drawn == [css(scale.color(v)) for v in cells]
    assert page.problems == []
