"""The page's heatmap in a real Chromium: sticky labels, hover text, rows grouped by the server."""

from __future__ import annotations

import pytest
from browser_helpers import call, job, open_page

pytestmark = pytest.mark.browser

PROMPT = " ".join(f"Fact {i} is about the tide and the moon." for i in range(12))


def _box(page, selector: str) -> dict:
    return page.locator(selector).first.evaluate(
        "n => { const b = n.getBoundingClientRect(); return {left: b.left, top: b.top}; }"
    )


def test_heatmap_keeps_labels_in_view_names_cells_and_groups_rows(page, server_url, tmp_path):
    from playwright.sync_api import expect

    run = job(server_url, "/api/generate", {"prompt": PROMPT, "max_new_tokens": 48})
    body = {"run_id": run["run_id"], "method": "grad_x_input", "matrix": True}
    view = job(server_url, "/api/explain", body)
    explanation = view["explanation_id"]
    n_tokens = len(view["target_tokens"])
    by_word = call(server_url, "GET", f"/api/explanations/{explanation}?rows=word")
    n_words = len(by_word["matrix"])
    assert by_word["matrix_rows"]["by"] == "word" and 1 <= n_words < n_tokens
    assert sum(len(t) for t in by_word["matrix_rows"]["tokens"]) == n_tokens

    open_page(page, f"{server_url}/#run={run['run_id']}")
    page.click("#tab-heatmap")
    rows = page.locator("#heatmap tbody tr")
    expect(rows).to_have_count(n_tokens)
    assert len(view["units"]) > 60  # wider than the page: the table scrolls sideways

    # Sticky labels: the header row and the first column stay put while the table scrolls.
    sticky = page.locator("#heatmap thead th.col, #heatmap th.rowhead").evaluate_all(
        "nodes => nodes.map(n => getComputedStyle(n).position)"
    )
    assert set(sticky) == {"sticky"}
    scroller = ".heatmap-scroll"
    frame = _box(page, scroller)
    page.locator(scroller).evaluate("n => { n.scrollLeft = 400; n.scrollTop = 120; }")
    page.wait_for_function("() => document.querySelector('.heatmap-scroll').scrollLeft > 0")
    assert abs(_box(page, "#heatmap tbody th.rowhead")["left"] - frame["left"]) < 3
    assert page.locator(scroller).evaluate("n => n.scrollTop") > 0  # it did scroll down
    assert abs(_box(page, "#heatmap thead th.corner")["top"] - frame["top"]) < 3

    # Hover: a cell names its row text, its column text and its score.
    cell = page.locator("#heatmap tbody tr").nth(2).locator("td").nth(3)
    cell.hover()
    title = cell.get_attribute("title")
    token, unit = view["target_tokens"][2], view["units"][3]["text"]
    assert f'"{token}"'.replace("\n", "\\n") in title and unit.strip() in title
    score = view["matrix"][2][3]
    assert title.endswith(f": {score:+.4f}" if score > 0 else f": {score:.4f}")
    page.locator("#result-card").screenshot(path=str(tmp_path / "heatmap-tokens.png"))

    # Rows grouped by output word: the server regroups, the page redraws with its colours.
    page.select_option("#heatmap-rows", "word")
    expect(rows).to_have_count(n_words)
    heads = page.locator("#heatmap tbody th.rowhead").evaluate_all(
        "nodes => nodes.map(n => n.title)"
    )
    assert heads == by_word["matrix_rows"]["labels"]
    drawn = (
        page.locator("#heatmap tbody tr")
        .first.locator("td")
        .evaluate_all("nodes => nodes.map(n => getComputedStyle(n).backgroundColor)")
    )
    stops = by_word["matrix_palette"]["stops"]
    assert drawn == [stops[i] for i in by_word["matrix_stops"][0]]
    expect(page.locator("#heatmap-note")).to_contain_text(f"{n_words} explained output words")
    page.select_option("#heatmap-rows", "line")
    by_line = call(server_url, "GET", f"/api/explanations/{explanation}?rows=line")
    expect(rows).to_have_count(len(by_line["matrix"]))
    page.locator("#result-card").screenshot(path=str(tmp_path / "heatmap-lines.png"))
    assert page.problems == []
