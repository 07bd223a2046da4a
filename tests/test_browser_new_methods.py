"""The page with the methods of issue 30: attnlrp and context_cite explain from the menu,
and a context_cite result answers a click on another output word from its kept
ablations at once (no job, no forward pass), with nothing left marked out of date."""

from __future__ import annotations

import re

import pytest
from browser_helpers import explain_in_page, generate_in_page, open_page

pytestmark = pytest.mark.browser

PROMPT = "Red apples grow on tall trees. Bananas are yellow. Name a fruit."


@pytest.mark.parametrize("method", ["attnlrp", "context_cite"])
def test_each_new_method_explains_from_the_menu(page, server_url, method):
    from playwright.sync_api import expect

    open_page(page, server_url)
    option = page.locator(f'#method option[value="{method}"]')
    expect(option).to_have_count(1)
    assert option.get_attribute("title")  # its one-line description, from the spec
    generate_in_page(page, PROMPT, 6)
    explain_in_page(page, method, **({"ablations": 16} if method == "context_cite" else {}))
    expect(page.locator("#text-view .unit")).not_to_have_count(0)
    expect(page.locator("#stale-banner")).to_be_hidden()


def test_a_click_re_explains_a_context_cite_result_from_its_ablations(page, server_url):
    from playwright.sync_api import expect

    open_page(page, server_url)
    generate_in_page(page, PROMPT, 6)
    explain_in_page(page, "context_cite", ablations=16)
    first = page.locator("#result-card").get_attribute("data-explanation")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.method == "POST" else None)
    words = page.locator("#output .out-word")
    word = words.nth(words.count() - 1)
    clicked = word.inner_text()
    word.click()
    card = page.locator("#result-card")
    expect(card).not_to_have_attribute("data-explanation", first)
    expect(page.locator("#notice")).to_contain_text("kept ablations")
    expect(page.locator("#selection-info")).to_contain_text(clicked.strip())
    expect(page.locator("#stale-banner")).to_be_hidden()
    expect(page.locator("#mask-top")).to_be_enabled()
    assert any(url.endswith("/api/retarget") for url in asked)
    assert not [url for url in asked if re.search(r"/api/explain$", url)]  # no new explain
