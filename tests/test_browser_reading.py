"""The page's reading aids, compare view, click targets and access token in a real Chromium.

Runs and explanations are made through the API (fast, exact), then the page is
opened on them, as a user reopening history would; each test saves a screenshot
of what it checked in its tmp_path.
"""

from __future__ import annotations

import re

import pytest
from browser_helpers import backgrounds, call, drag_select, generate_in_page, job, open_page
from server_helpers import make_wordy_lm

from promptxray.methods import REGISTRY
from promptxray.server import create_app, serve_in_thread

pytestmark = pytest.mark.browser


def explained_run(base: str, prompt: str, method: str = "grad_x_input", **extra) -> tuple:
    run = job(base, "/api/generate", {"prompt": prompt, "max_new_tokens": 12})
    view = job(base, "/api/explain", {"run_id": run["run_id"], "method": method, **extra})
    return run, view


# ----- click to target -----------------------------------------------------------------------
def test_click_a_word_to_target_it_and_shift_click_to_extend(page, server_url, tmp_path):
    from playwright.sync_api import expect

    run = job(
        server_url, "/api/generate", {"prompt": "Tell me about rivers.", "max_new_tokens": 16}
    )
    output = run["output"]
    words = list(re.finditer(r"\S+", output))
    if len(words) < 4:
        pytest.skip("the random model wrote fewer than four words")
    open_page(page, f"{server_url}/#run={run['run_id']}")
    expect(page.locator("#output .out-word")).to_have_count(len(words))

    page.locator("#output .out-word").nth(1).click()
    expect(page.locator("#output mark.selected-span")).to_have_text(words[1].group())
    expect(page.locator("#selection-info")).to_contain_text(
        f"Explaining characters {words[1].start()}–{words[1].end()}"
    )
    page.locator("#output .out-word").nth(3).click(modifiers=["Shift"])
    extended = output[words[1].start() : words[3].end()]
    expect(page.locator("#output mark.selected-span")).to_have_text(extended)
    page.locator("#output .out-word").nth(0).click(modifiers=["Shift"])  # extends backwards
    expect(page.locator("#output mark.selected-span")).to_have_text(
        output[words[0].start() : words[3].end()]
    )
    page.locator("#output .out-word").nth(2).click()  # a plain click starts over
    expect(page.locator("#output mark.selected-span")).to_have_text(words[2].group())

    # dragging over a space alone is refused with a message; the target stays
    gap = output.find(" ", words[2].end())
    if gap >= 0:
        drag_select(page, "#output", gap, gap + 1)
        expect(page.locator("#error")).to_contain_text("only whitespace")
        expect(page.locator("#output mark.selected-span")).to_have_text(words[2].group())
    # drag-select still works, and Explain explains exactly the target
    drag_select(page, "#output", words[1].start(), words[2].end())
    dragged = output[words[1].start() : words[2].end()]
    expect(page.locator("#output mark.selected-span")).to_have_text(dragged)
    expect(page.locator("#error")).to_be_hidden()
    page.click("#explain")
    expect(page.locator("#sal-output mark.target")).to_have_text(dragged)
    page.screenshot(path=str(tmp_path / "click-target.png"), full_page=True)
    assert page.problems == []


# ----- intensity, top list, near-zero units ------------------------------------------------------
def test_intensity_slider_recolours_from_the_server(page, server_url, tmp_path):
    from playwright.sync_api import expect

    run, view = explained_run(server_url, "Green hills and quiet rivers under a grey sky.")
    open_page(page, f"{server_url}/#run={run['run_id']}")
    expect(page.locator("#result-card")).to_be_visible()
    units = "#sal-prompt .unit, #sal-output .unit"
    before = backgrounds(page, units)
    assert before == [u["color"] for u in sorted(view["units"], key=_page_order(view))]
    page.locator("#gamma").fill("0.3")
    expect(page.locator("#gamma-value")).to_have_text("0.3")
    softer = call(server_url, "GET", f"/api/explanations/{view['explanation_id']}?gamma=0.3")
    wanted = [u["color"] for u in sorted(softer["units"], key=_page_order(softer))]
    page.wait_for_function(
        "([sel, want]) => [...document.querySelectorAll(sel)]"
        ".map(n => getComputedStyle(n).backgroundColor).join('|') === want.join('|')",
        arg=[units, wanted],
    )
    assert backgrounds(page, units) != before
    page.locator("#result-card").screenshot(path=str(tmp_path / "intensity.png"))
    assert page.problems == []


def _page_order(view: dict):
    """Units in the order the page draws them: system, prompt, then output, by position."""
    order = {"system": 0, "user": 1, "output": 2}
    return lambda u: (order[u["role"]], u["span"][0])


def test_top_list_names_sign_and_place_and_finds_the_unit(page, server_url, tmp_path):
    from playwright.sync_api import expect

    prompt = "\n".join(f"Topic: item {i}. Some filler words here." for i in range(1, 16))
    run, view = explained_run(server_url, prompt + "\nWrite about the last topic.")
    open_page(page, f"{server_url}/#run={run['run_id']}")
    expect(page.locator("#result-card")).to_be_visible()
    items = page.locator("#top-list li")
    assert items.count() == min(12, len(view["listed"]))
    first = view["units"][view["listed"][0]]
    expect(items.first).to_contain_text(first["where"])
    assert items.first.get_attribute("title").startswith(first["position"])
    expect(items.first).to_contain_text("▲ raises" if first["score"] > 0 else "▼ lowers")
    # a unit low in a long prompt: scroll away, click its entry, it comes into view and flashes
    lowest = max(
        view["listed"][:12],
        key=lambda i: view["units"][i]["span"][0] if view["units"][i]["role"] == "user" else -1,
    )
    page.evaluate("window.scrollTo(0, 0)")
    page.locator(f'#top-list li[data-index="{lowest}"] .top-text').click()
    unit = page.locator(
        f'#sal-prompt .unit[data-index="{lowest}"], #sal-output .unit[data-index="{lowest}"]'
    )
    expect(unit).to_have_class(re.compile(r"\bflash\b"))
    page.wait_for_function(
        'i => { const r = document.querySelector(`#text-view .unit[data-index="${i}"]`)'
        ".getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }",
        arg=lowest,
    )
    page.screenshot(path=str(tmp_path / "top-list.png"))
    # near-zero units are neither coloured nor listed, and the list says how many it left out
    hidden = len(view["units"]) - len(view["listed"])
    if hidden:
        expect(page.locator("#top-note")).to_contain_text(f"{hidden} unit")
    # the pick button still picks for masking
    items.first.locator(".pick-button").click()
    expect(page.locator("#mask-picked")).to_have_text("Remove picked (1)")
    assert page.problems == []


def test_xprompt_shows_its_search_not_rows_of_zeros(page, server_url, tmp_path):
    from playwright.sync_api import expect

    if "xprompt" not in REGISTRY:
        pytest.skip("xprompt is not registered in this checkout")
    run, view = explained_run(
        server_url, "Red apples grow on tall trees. Bananas are yellow.", "xprompt", k=2
    )
    open_page(page, f"{server_url}/#run={run['run_id']}")
    detail = page.locator("#search-detail")
    expect(detail).to_be_visible()
    for words in ("chosen together", "best start", "passes", "log p(target) drop"):
        expect(detail).to_contain_text(words)
    expect(detail).to_contain_text(str(view["search"]["spent"]))
    if len(view["search"]["trajectory"]) > 1:
        expect(detail.locator("svg.sparkline polyline")).to_have_count(1)
    scores = page.locator("#top-list .top-score").all_inner_texts()
    chosen = len(view["selected"])
    assert all(float(s) != 0 for s in scores[chosen:])  # only the set may score 0 here
    page.locator("#result-card").screenshot(path=str(tmp_path / "xprompt-search.png"))
    assert page.problems == []


# ----- a run with several explanations -----------------------------------------------------------
def test_a_reopened_run_shows_all_its_explanations_and_mask_experiments(page, server_url, tmp_path):
    from playwright.sync_api import expect

    run, first = explained_run(
        server_url, "The sea is calm tonight. Write about the sky.", "grad_norm"
    )
    second = job(server_url, "/api/explain", {"run_id": run["run_id"], "method": "leave_one_out"})
    edit_one = job(server_url, "/api/mask", {"explanation_id": first["explanation_id"], "top_k": 1})
    edit_two = job(
        server_url, "/api/mask", {"explanation_id": second["explanation_id"], "top_k": 2}
    )
    open_page(page, f"{server_url}/#run={run['run_id']}")
    results = page.locator("#run-results")
    expect(results).to_contain_text("2 explanations, 2 mask experiments")
    expect(results.locator(".run-results-list > li")).to_have_count(2)
    expect(results.locator(".run-edits li")).to_have_count(2)
    # the latest is shown; the first one and its experiment are one click away
    expect(page.locator("#result-meta")).to_contain_text("leave_one_out")
    expect(page.locator("#metric-pr")).to_have_text(f"{edit_two['pr']:.3f}")
    results.locator(f'li[data-explanation="{first["explanation_id"]}"] > button').click()
    expect(page.locator("#result-meta")).to_contain_text("grad_norm")
    expect(page.locator("#mask-result")).to_be_hidden()
    results.locator(f'li[data-explanation="{first["explanation_id"]}"] .run-edits button').click()
    expect(page.locator("#mask-result")).to_be_visible()
    expect(page.locator("#metric-pr")).to_have_text(f"{edit_one['pr']:.3f}")
    expect(page.locator("#masked-units .chip")).to_have_count(1)
    page.screenshot(path=str(tmp_path / "run-results.png"), full_page=True)
    assert page.problems == []


# ----- compare -----------------------------------------------------------------------------
def test_compare_two_runs_side_by_side_by_url(page, server_url, tmp_path):
    from playwright.sync_api import expect

    run_a, view_a = explained_run(server_url, "The sea is calm tonight. Write about the sky.")
    run_b, view_b = explained_run(server_url, "The sea is rough tonight. Write about the sky.")
    a = f"{run_a['run_id']}:{view_a['explanation_id']}"
    b = f"{run_b['run_id']}:{view_b['explanation_id']}"
    open_page(page, f"{server_url}/#compare={a},{b}")
    card = page.locator("#compare-card")
    expect(card).to_be_visible()
    expect(page.locator("#compose-card")).to_be_hidden()
    expect(page.locator("#compare-a")).to_have_value(a)
    expect(page.locator("#compare-b")).to_have_value(b)
    expected = call(server_url, "GET", f"/api/compare?a={a}&b={b}")
    for key in ("a", "b"):
        view = expected[key]["view"]
        units = f"#cmp-{key}-prompt .unit, #cmp-{key}-output .unit"
        # the selects are filled before the comparison arrives: wait for its units
        expect(page.locator(units)).to_have_count(len(view["units"]))
        drawn = backgrounds(page, units)
        assert drawn == [u["color"] for u in sorted(view["units"], key=_page_order(view))]
    expect(page.locator("#compare-caption")).to_contain_text(expected["palette"]["caption"])
    expect(page.locator("#cmp-prompt-diff del")).to_have_text("calm")
    expect(page.locator("#cmp-prompt-diff ins")).to_have_text("rough")
    rows = page.locator("#cmp-changes tr")
    assert rows.count() == min(30, len(expected["changes"])) > 0
    expect(rows.first.locator("td").first).to_have_text(expected["changes"][0]["text"])
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    # swapping the sides in the page updates the shareable address
    page.select_option("#compare-a", b)
    page.select_option("#compare-b", a)
    page.wait_for_function("want => location.hash === want", arg=f"#compare={b},{a}")
    expect(page.locator("#cmp-prompt-diff del")).to_have_text("rough")
    page.click("#compare-close")
    expect(page.locator("#compose-card")).to_be_visible()
    assert page.problems == []


# ----- nothing lost, and the access token -------------------------------------------------------
def test_a_result_that_could_not_be_saved_is_shown_with_a_notice(page, server_url, served_app):
    import sqlite3

    from playwright.sync_api import expect

    store = served_app.state.store

    def disk_full(*_args):
        raise sqlite3.OperationalError("database or disk is full")

    open_page(page, server_url)
    store._write = disk_full
    try:
        page.fill("#prompt", "A prompt on a full disk.")
        page.fill("#max-new", "4")
        page.click("#generate")
        expect(page.locator("#notice")).to_contain_text("Not saved to the history")
        expect(page.locator("#notice")).to_contain_text("database or disk is full")
        expect(page.locator("#error")).to_be_hidden()
        expect(page.locator("#explain")).to_be_enabled()
        expect(page.locator("#history-list li").first).to_contain_text("not saved")
    finally:
        del store._write
    assert page.problems == []


def test_the_page_takes_the_token_from_its_address(page, tmp_path):
    from playwright.sync_api import expect

    app = create_app(make_wordy_lm(), tmp_path / "data", token="page-token-123")
    with serve_in_thread(app) as url:
        page.goto(url)
        expect(page.locator("#token-box")).to_be_visible()
        expect(page.locator("#token-message")).to_contain_text("access token")
        page.screenshot(path=str(tmp_path / "token-needed.png"))
        open_page(page, f"{url}/?token=page-token-123")
        assert "token" not in page.url  # taken out of the address bar once kept
        generate_in_page(page, "Hello there.", 3)
        page.reload()  # kept: no token in the address any more, still works
        expect(page.locator("#model-name")).to_have_text("tiny-random-llama")
        expect(page.locator("#history-list li")).to_have_count(1)
        href = page.locator("#export-json").get_attribute("href")
        assert href == "#"  # nothing explained yet; exports carry the token once shown
        assert [p for p in page.problems if not p.startswith(url)] == []
