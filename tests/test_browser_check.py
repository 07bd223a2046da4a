"""The faithfulness check on the page, in a real Chromium: the badge and the deletion curve
agree with the JSON, follow the units the result is shown at, and one heatmap row checks
itself on demand."""

from __future__ import annotations

import pytest
from browser_helpers import call, generate_in_page, job, open_page

pytestmark = pytest.mark.browser

PROMPT = "The sea is calm tonight. Write one line about the sky.\nKeep it short, please."
BOX = "#check-result"


def drawn(page, box: str) -> dict:
    """What a check block shows: badge text, tooltip and tone, and every point's value."""
    return page.locator(box).evaluate(
        """box => {
            const all = (sel, key) => [...box.querySelectorAll(sel)].map(n => +n.dataset[key]);
            const values = (sel) => all(sel, 'ratio');
            const badge = box.querySelector('.check-badge');
            const kept = box.querySelector('.sufficiency-point');
            return {
                label: badge.textContent, title: badge.title, tone: badge.dataset.tone,
                removed: all('.curve-point', 'removed'),
                curve: values('.curve-point'), random: values('.random-point'),
                kept: kept ? Number(kept.dataset.ratio) : null,
                figures: box.querySelector('.check-figures').textContent,
            };
        }"""
    )


def assert_agrees(shown: dict, check: dict) -> None:
    assert shown["label"] == check["label"] == check["verdict"].split(":")[0]
    assert shown["title"] == check["verdict"] and shown["tone"] == check["tone"]
    assert shown["removed"] == list(range(check["k"] + 1))
    assert shown["curve"] == check["curve"] and shown["curve"][0] == 1.0
    assert shown["random"] == check["random_ratios"]
    assert shown["kept"] == check["sufficiency_ratio"]
    n, sets = len(check["random_ratios"]), f"{check['k']}-{check['granularity']} sets"
    assert f"more than {check['beats_random']} of {n} random {sets}" in shown["figures"]
    assert f"{check['forward_passes']} forward passes to check" in shown["figures"]


def test_the_check_agrees_with_the_json_follows_the_units_and_checks_a_row(page, server_url):
    from playwright.sync_api import expect

    open_page(page, server_url)
    generate_in_page(page, PROMPT, 12)
    page.select_option("#method", "grad_x_input")
    page.check("#matrix")
    page.click("#explain")
    word_block = page.locator(f'{BOX} .check-block[data-granularity="word"]')
    expect(word_block).to_be_visible()
    expect(page.locator(f"{BOX} .check-curve")).to_be_visible()
    explanation = page.locator("#result-card").get_attribute("data-explanation")
    view = call(server_url, "GET", f"/api/explanations/{explanation}")
    check = view["check"]
    assert check["granularity"] == "word" and len(check["curve"]) == check["k"] + 1
    assert_agrees(drawn(page, BOX), check)

    # Another granularity: a check recomputed at sentences, never the word one relabelled.
    page.select_option("#granularity", "sentence")
    sentence_block = page.locator(f'{BOX} .check-block[data-granularity="sentence"]')
    expect(sentence_block).to_be_visible()
    expect(word_block).to_have_count(0)
    regrouped = call(server_url, "GET", f"/api/explanations/{explanation}?granularity=sentence")
    assert regrouped["check"]["granularity"] == "sentence" and not regrouped["check_due"]
    assert_agrees(drawn(page, BOX), regrouped["check"])
    page.select_option("#granularity", "word")
    expect(word_block).to_be_visible()
    assert_agrees(drawn(page, BOX), check)

    # One heatmap row (an output token) proves itself against that token's probability.
    page.click("#tab-heatmap")
    page.locator('#heatmap th.rowhead[data-row="1"]').click()
    row_block = page.locator("#row-check .check-block")
    expect(row_block).to_be_visible()
    asked = {"explanation_id": explanation, "granularity": "word", "token": 1}
    row = job(server_url, "/api/check", asked)["check"]  # kept: a finished job
    assert row["token"] == 1 and "p(output token 1)" in row["verdict"]
    assert_agrees(drawn(page, "#row-check"), row)
    expect(page.locator("#row-check .check-heading")).to_contain_text("Output token 1")
    assert page.problems == []


def test_a_result_explained_without_its_check_offers_one(page, server_url):
    from playwright.sync_api import expect

    open_page(page, server_url)
    generate_in_page(page, PROMPT, 8)
    page.uncheck("#check-on")
    page.click("#explain")
    badge = page.locator(f"{BOX} .check-badge")
    expect(badge).to_have_text("not checked")
    explanation = page.locator("#result-card").get_attribute("data-explanation")
    assert call(server_url, "GET", f"/api/explanations/{explanation}")["check"] is None
    page.click("#check-now")
    expect(page.locator(f"{BOX} .check-curve")).to_be_visible()
    view = call(server_url, "GET", f"/api/explanations/{explanation}")
    assert_agrees(drawn(page, BOX), view["check"])
    assert page.problems == []
