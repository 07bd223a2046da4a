"""The page as a newcomer meets it (issue 29): nothing stale, nothing contradictory.

One test per point of the issue (remote use as printed, one visible state, one wording
source and pass count, input errors in the user's words, compare times), then one
walk-through: generate → click a word → change method → explain → mask → compare →
history delete, checking at every step that no text on screen is left over or says
something another part of the page contradicts. Every server here listens on
127.0.0.1; other names reach it only through Chromium's host resolver rules.
"""

from __future__ import annotations

import re
import socket
import sqlite3
from urllib.parse import urlsplit

import pytest
from browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    call,
    explain_in_page,
    generate_in_page,
    job,
    open_page,
)
from server_helpers import make_wordy_lm

from promptxray.methods import REGISTRY
from promptxray.server import create_app, serve_in_thread

pytestmark = pytest.mark.browser

PROMPT = "Red apples grow on tall trees. Bananas are yellow. Name a fruit."


def specs(base: str) -> dict[str, dict]:
    return {m["name"]: m for m in call(base, "GET", "/api/info")["methods"]}


def words_of(page) -> list:
    return page.locator("#output .out-word").all()


# ----- 1. remote use as printed ------------------------------------------------------------
def test_the_printed_remote_address_opens_the_page_and_a_foreign_name_gets_a_page(tmp_path):
    """`serve --host 0.0.0.0` prints http://HOSTNAME:PORT/?token=…; Chromium opens it as
    printed (the name resolved to 127.0.0.1 by its resolver rules, so no other interface is
    touched), and a name the server does not know gets a short page naming --allowed-host."""
    from playwright.sync_api import expect, sync_playwright

    from promptxray.server.security import open_addresses

    token = "remote-page-token"
    app = create_app(make_wordy_lm(), tmp_path / "data", host="0.0.0.0", token=token)
    with serve_in_thread(app) as url:
        port = urlsplit(url).port
        printed = f"{open_addresses('0.0.0.0', port)[0]}?token={token}"
        name = urlsplit(printed).hostname
        assert name == socket.gethostname().lower() and "0.0.0.0" not in printed
        rules = f"--host-resolver-rules=MAP {name} 127.0.0.1, MAP rebind.example 127.0.0.1"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules])
            try:
                page = browser.new_page()
                page.set_default_timeout(60_000)
                open_page(page, printed)
                generate_in_page(page, "Hello there.", 3)
                expect(page.locator("#error")).to_be_hidden()
                page.screenshot(path=str(tmp_path / "remote.png"))
                refused = page.goto(f"http://rebind.example:{port}/")
                assert refused.status == 400
                assert "--allowed-host NAME" in page.locator("body").inner_text()
                assert not page.locator("body").inner_text().lstrip().startswith("{")
            finally:
                browser.close()


# ----- 2. one visible state ----------------------------------------------------------------
def test_a_result_of_another_target_or_method_is_marked_and_cannot_be_masked(page, server_url):
    from playwright.sync_api import expect

    open_page(page, server_url)
    generate_in_page(page, PROMPT, 6)
    page.click("#explain")
    expect(page.locator("#result-card")).to_be_visible()
    expect(page.locator("#job")).to_be_hidden()
    expect(page.locator("#mask-top")).to_be_enabled()
    expect(page.locator("#estimate")).to_contain_text("grad_norm")
    # another target: the result stays, dimmed, says so, offers Explain again; no mask
    words_of(page)[-1].click()
    expect(page.locator("#result-card")).to_have_class(re.compile(r"\bstale\b"))
    expect(page.locator("#stale-banner")).to_contain_text("target")
    expect(page.locator("#explain-again")).to_be_visible()
    expect(page.locator("#mask-top")).to_be_disabled()
    expect(page.locator("#mask-stale")).to_be_visible()
    # another method: the estimate is of the new request, never the old one's
    page.select_option("#method", "grad_x_input")
    expect(page.locator("#estimate")).to_contain_text("grad_x_input")
    expect(page.locator("#stale-banner")).to_contain_text("method")
    page.click("#explain-again")
    expect(page.locator("#result-meta")).to_contain_text("grad_x_input · word")
    expect(page.locator("#stale-banner")).to_be_hidden()
    expect(page.locator("#result-card")).not_to_have_class(re.compile(r"\bstale\b"))
    expect(page.locator("#mask-top")).to_be_enabled()
    target = page.locator("#output mark.selected-span").inner_text()
    assert page.locator("#sal-output mark.target").inner_text().strip() == target.strip()
    assert page.problems == []


def test_an_error_belongs_to_its_action_and_clears_when_the_form_changes(page, server_url):
    from playwright.sync_api import expect

    if not {"leave_one_out", "xprompt"} <= set(REGISTRY):
        pytest.skip("leave_one_out / xprompt are not registered in this checkout")
    open_page(page, server_url)
    generate_in_page(page, PROMPT, 4)
    explain_in_page(page, "leave_one_out")
    page.select_option("#granularity", "token")  # refused: computed on whole words
    expect(page.locator("#error")).to_contain_text("no scores for token units")
    expect(page.locator("#stale-banner")).to_contain_text("granularity")
    page.select_option("#method", "xprompt")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#estimate")).to_contain_text("xprompt")
    assert page.problems == []


# ----- 3. one wording source, one pass count ----------------------------------------------
def test_help_headers_and_pass_counts_come_from_the_server_and_agree(page, server_url):
    from playwright.sync_api import expect

    if "xprompt" not in REGISTRY:
        pytest.skip("xprompt is not registered in this checkout")
    served = specs(server_url)
    open_page(page, server_url)
    # the menu is the served list, each entry with its one-line summary
    options = page.locator("#method option")
    assert options.evaluate_all("os => os.map(o => o.value)") == list(served)
    assert options.evaluate_all("os => os.map(o => o.title)") == [
        m["summary"] for m in served.values()
    ]
    generate_in_page(page, PROMPT, 4)
    for name in ("leave_one_out", "xprompt", "grad_norm"):
        page.select_option("#method", name)
        help_text = page.locator("#method-help").inner_text()
        assert help_text == f"{served[name]['description']} {served[name]['regrouping']}"
        assert "coarser, not finer" not in help_text
    explain_in_page(page, "xprompt", k=2)
    expect(page.locator("#top-order")).to_have_text(f"({served['xprompt']['ranking']})")
    meta = page.locator("#result-meta").inner_text()
    spent = int(re.search(r"(\d+) forward passes", meta).group(1))
    search = page.locator("#search-detail").inner_text()
    assert f"the {spent} forward passes of this result" in search
    assert "one forward pass each" in search
    # the estimate bounds what the result then spent, counted the same way
    estimate = page.locator("#estimate").inner_text()
    bound = int(re.search(r"at most (\d+) forward passes \((\d+) to explain", estimate).group(2))
    assert spent <= bound
    check_passes = page.locator("#check-result").inner_text()
    assert "forward passes to check" in check_passes
    assert (
        page.locator("#estimate").get_attribute("title")
        == call(server_url, "GET", "/api/info")["passes_note"]
    )
    assert page.problems == []


# ----- 4. input errors in the user's words -------------------------------------------------
def test_input_errors_are_in_words_under_their_field_and_nothing_is_replaced(page, server_url):
    from playwright.sync_api import expect

    open_page(page, server_url)
    page.fill("#prompt", "Hello.")
    for typed, words in (("0", "at least 1"), ("99999", "at most 2048")):
        page.fill("#max-new", typed)
        page.click("#generate")
        note = page.locator(".field-error[data-field='max_new_tokens']")
        expect(note).to_have_text(f"Max new tokens must be {words}")
        expect(page.locator("#error")).to_be_hidden()
        expect(page.locator("#output-card")).to_be_hidden()
        assert page.locator("#max-new").input_value() == typed  # never silently replaced
    page.fill("#max-new", "3")
    expect(page.locator(".field-error")).to_have_count(0)  # typing clears it
    # a body that is not JSON gets a sentence, not "0: JSON decode error"
    answer = page.evaluate(
        """async () => {
            const headers = {'Content-Type': 'application/json'};
            const r = await fetch('/api/generate', {method: 'POST', body: '{not', headers});
            return (await r.json()).detail;
        }"""
    )
    assert answer == "the request body is not valid JSON"
    assert page.problems == []


def test_one_heatmap_control_and_history_delete_asks_first(page, server_url):
    from playwright.sync_api import expect

    open_page(page, server_url)
    generate_in_page(page, PROMPT, 3)
    for method in ("grad_x_input", "grad_norm", "integrated_gradients"):
        page.select_option("#method", method)
        heatmap_boxes = page.locator(".controls label.check").filter(
            has_text=re.compile("heatmap", re.I)
        )
        expect(heatmap_boxes).to_have_count(1)
    items = page.locator("#history-list li")
    before = items.count()
    items.first.locator(".history-delete").click()
    expect(items.first.locator(".history-confirm")).to_contain_text("cannot be undone")
    items.first.locator(".history-confirm-keep").click()
    expect(items).to_have_count(before)
    expect(page.locator(".history-confirm")).to_have_count(0)
    items.first.locator(".history-delete").click()
    items.first.locator(".history-confirm-delete").click()
    expect(items).to_have_count(before - 1)
    assert page.problems == []


def test_the_token_page_and_the_badge_say_what_the_server_answered(page, tmp_path):
    from playwright.sync_api import expect

    app = create_app(make_wordy_lm(), tmp_path / "data", token="badge-token")
    with serve_in_thread(app) as url:
        page.goto(url)
        expect(page.locator("#token-box")).to_be_visible()
        expect(page.locator("#model-name")).to_have_text("access token needed")
        expect(page.locator("#error")).to_be_hidden()
        assert "Cannot reach" not in page.locator("body").inner_text()
        page.fill("#token-input", "badge-token")
        page.click("#token-save")
        expect(page.locator("#model-name")).to_have_text("tiny-random-llama")
    assert [p for p in page.problems if not p.startswith(url)] == []


# ----- 5. compare: one time per entry --------------------------------------------------------
def test_compare_titles_show_the_time_their_menu_entries_show(page, server_url, served_app):
    from playwright.sync_api import expect

    runs = [
        job(server_url, "/api/generate", {"prompt": p, "max_new_tokens": 4})
        for p in ("The sea is calm. Write a line.", "The sea is rough. Write a line.")
    ]
    # runs made an hour before they were explained: the run's time is not the entry's
    with sqlite3.connect(served_app.state.store.path) as db:
        for run in runs:
            db.execute("UPDATE runs SET created = created - 3600 WHERE id = ?", (run["run_id"],))
    views = [job(server_url, "/api/explain", {"run_id": r["run_id"]}) for r in runs]
    a = f"{runs[0]['run_id']}:{views[0]['explanation_id']}"
    b = f"{runs[1]['run_id']}:{views[1]['explanation_id']}"
    open_page(page, f"{server_url}/#compare={a},{b}")
    expect(page.locator("#cmp-a-title")).to_contain_text("A: ")
    for key in ("a", "b"):
        entry = page.locator(f"#compare-{key} option:checked").inner_text()
        shown = entry.split(" · ")[0]
        expect(page.locator(f"#cmp-{key}-title")).to_contain_text(f" · {shown}")
    assert page.problems == []


# ----- the walk-through ----------------------------------------------------------------------
def no_contradiction(page, method: str) -> None:
    """What the page says now is of one request: the form's method and target."""
    from playwright.sync_api import expect

    expect(page.locator("#stale-banner")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#result-meta")).to_contain_text(f"{method} · ")
    expect(page.locator("#estimate")).to_contain_text(f"{method}:")
    span = page.locator("#output mark.selected-span")
    target = span.inner_text() if span.count() else page.locator("#output").inner_text()
    assert page.locator("#sal-output mark.target").inner_text().strip() == target.strip()


def test_walk_through_generate_target_method_explain_mask_compare_delete(page, server_url):
    from playwright.sync_api import expect

    served = specs(server_url)
    open_page(page, server_url)
    generate_in_page(page, PROMPT, 6)
    page.click("#explain")
    expect(page.locator("#job")).to_be_hidden()
    no_contradiction(page, "grad_norm")
    # click a word: the old result is marked, not passed off as the new target's
    words_of(page)[1].click()
    expect(page.locator("#stale-banner")).to_contain_text("target")
    expect(page.locator("#mask-top")).to_be_disabled()
    # change the method, explain: one state again, in the new method's words
    page.select_option("#method", "grad_x_input")
    expect(page.locator("#estimate")).to_contain_text("grad_x_input:")
    page.click("#explain")
    expect(page.locator("#job")).to_be_hidden()
    no_contradiction(page, "grad_x_input")
    expect(page.locator("#top-order")).to_have_text(f"({served['grad_x_input']['ranking']})")
    expect(page.locator("#removal-preview")).to_contain_text(served["grad_x_input"]["removal"])
    # mask: of this result, for this target
    page.click("#mask-top")
    expect(page.locator("#mask-result")).to_be_visible()
    expect(page.locator("#job")).to_be_hidden()
    no_contradiction(page, "grad_x_input")
    expect(page.locator("#run-results")).to_contain_text("2 explanations, 1 mask experiment")
    # compare the two explanations of this run: each title's time is its entry's
    page.click("#compare-open")
    expect(page.locator("#compare-result")).to_be_visible()
    for key in ("a", "b"):
        shown = page.locator(f"#compare-{key} option:checked").inner_text().split(" · ")[0]
        expect(page.locator(f"#cmp-{key}-title")).to_contain_text(f" · {shown}")
    page.click("#compare-close")
    # delete the run from the history: asked first, then the page starts afresh
    current = page.locator("#history-list li.current")
    current.locator(".history-delete").click()
    current.locator(".history-confirm-delete").click()
    expect(page.locator("#output-card")).to_be_hidden()
    expect(page.locator("#result-card")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    assert page.problems == []
