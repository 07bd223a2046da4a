"""A conversation, a pasted response and a contrast in a real Chromium (issue 9).

The user builds a three-turn conversation in the editor, pastes an answer instead
of generating one, clicks a word of it, explains it against an alternative
("instead of…") and reads the result by turn; then removes units and reopens the
run. The tiny model makes it about the page and the API together, not about
what a real model attributes.
"""

from __future__ import annotations

import re

import pytest
from browser_helpers import call, open_page

pytestmark = pytest.mark.browser

TURNS = [
    ("user", "Name a colour of the sea."),
    ("assistant", "Deep green, mostly."),
    ("user", "And of the sky at night?"),
]
RESPONSE = "The night sky is dark blue and full of stars."
CONTRAST = " red"


def test_conversation_pasted_response_and_contrast(page, server_url, tmp_path):
    from playwright.sync_api import expect

    open_page(page, server_url)

    # 1. the prompt box is the first user turn; two turns are added, a third removed
    page.fill("#prompt", TURNS[0][1])
    page.click("#add-turn")
    page.click("#add-turn")
    page.click("#add-turn")
    turns = page.locator("#turns .turn")
    expect(turns).to_have_count(3)
    expect(turns.nth(0).locator(".turn-role")).to_have_value("assistant")
    expect(turns.nth(1).locator(".turn-role")).to_have_value("user")
    expect(turns.nth(1).locator(".turn-number")).to_have_text("turn 2")
    turns.nth(2).locator(".turn-remove").click()
    expect(turns).to_have_count(2)
    turns.nth(0).locator(".turn-text").fill(TURNS[1][1])
    turns.nth(1).locator(".turn-text").fill(TURNS[2][1])

    # 2. paste a response instead of generating: the run's output is that text
    page.click("#response-box summary")
    page.fill("#response", RESPONSE)
    page.click("#use-response")
    expect(page.locator("#job")).to_be_hidden()
    expect(page.locator("#output")).to_have_text(RESPONSE)
    expect(page.locator("#output-source")).to_be_visible()
    expect(page.locator("#output-source")).to_have_text("response supplied, not generated")
    run_id = re.search(r"run=([0-9a-f]+)", page.url).group(1)
    run = call(server_url, "GET", f"/api/runs/{run_id}")
    assert run["output_source"] == "given" and run["output"] == RESPONSE
    assert [(m["role"], m["content"]) for m in run["messages"]] == TURNS

    # 3. click a word of it: that word is the target
    page.locator("#output .out-word").filter(has_text=re.compile(r"^blue$")).click()
    expect(page.locator("#output mark.selected-span")).to_have_text("blue")

    # 4. explain it instead of a contrast, with the heatmap
    page.select_option("#method", "grad_x_input")
    page.fill("#contrast", CONTRAST)
    page.check("#matrix")
    page.click("#explain")
    expect(page.locator("#result-card")).to_be_visible()
    expect(page.locator("#job")).to_be_hidden()
    meta = page.locator("#result-meta")
    expect(meta).to_contain_text("rather than ' red'")
    expect(meta).to_contain_text("response supplied, not generated")
    expect(page.locator("#sal-output-source")).to_be_visible()
    expect(page.locator("#sal-output mark.target")).to_have_text(" blue")

    # every turn under its label, each with the units of its own words
    labels = page.locator("#sal-turns .turn-label").all_inner_texts()
    assert labels == ["[turn 0 · user]", "[turn 1 · assistant]", "[turn 2 · user]"]
    expect(page.locator("#sal-prompt-block")).to_be_hidden()
    for turn, (_, text) in enumerate(TURNS):
        box = page.locator(f'#sal-turns .turn-box[data-turn="{turn}"]')
        expect(box).to_have_text(text)
        assert box.locator(".unit").count() == len(text.split())
    expect(page.locator("#sal-output-title")).to_have_text("[turn 3 · assistant] Output")
    assert "[turn" in page.locator("#top-list").inner_text()
    page.screenshot(path=str(tmp_path / "conversation.png"), full_page=True)

    # heatmap rows: the target's tokens, then the contrast's, labelled "vs …"
    explanation = page.locator("#result-card").get_attribute("data-explanation")
    view = call(server_url, "GET", f"/api/explanations/{explanation}")
    page.click("#tab-heatmap")
    heads = page.locator("#heatmap tbody th.rowhead").evaluate_all(
        "nodes => nodes.map(n => n.title)"
    )
    assert heads == view["matrix_rows"]["labels"]
    assert heads[-1].startswith("vs") and len(heads) > len(view["target_tokens"])
    page.locator("#result-card").screenshot(path=str(tmp_path / "contrast-heatmap.png"))
    page.click("#tab-text")

    # 5. remove the earlier answer's words and regenerate: shown turn by turn
    for index in range(3):
        page.locator('#sal-turns .turn-box[data-turn="1"] .unit').nth(index).click()
    expect(page.locator("#mask-picked")).to_have_text("Remove picked (3)")
    page.click("#mask-picked")
    expect(page.locator("#mask-result")).to_be_visible()
    expect(page.locator("#job")).to_be_hidden()
    expect(page.locator("#masked-title")).to_have_text("Conversation without them")
    expect(page.locator("#masked-prompt .masked-turn")).to_have_count(3)
    removed = page.locator('#masked-prompt .masked-turn[data-turn="1"] del.removed')
    assert [t.strip() for t in removed.all_inner_texts()] == TURNS[1][1].split()
    assert page.locator('#masked-prompt .masked-turn[data-turn="0"] del').count() == 0
    page.screenshot(path=str(tmp_path / "conversation-mask.png"), full_page=True)

    # 6. reload: the editor gets the conversation back, the contrast and the pasted answer too
    page.reload()
    expect(page.locator("#result-card")).to_be_visible()
    expect(page.locator("#prompt")).to_have_value(TURNS[0][1])
    expect(turns).to_have_count(2)
    expect(turns.nth(0).locator(".turn-role")).to_have_value("assistant")
    expect(turns.nth(1).locator(".turn-text")).to_have_value(TURNS[2][1])
    expect(page.locator("#response")).to_have_value(RESPONSE)
    expect(page.locator("#contrast")).to_have_value(CONTRAST)
    expect(page.locator("#output-source")).to_be_visible()
    assert page.problems == []


def test_a_bad_conversation_shows_the_servers_one_line(page, server_url):
    from playwright.sync_api import expect

    open_page(page, server_url)
    page.fill("#prompt", "Hello there.")
    page.click("#add-turn")
    page.locator("#turns .turn-role").select_option("system")
    page.locator("#turns .turn-text").fill("Be brief.")
    page.click("#generate")
    expect(page.locator("#error")).to_contain_text("ends with a system message")
    page.locator("#turns .turn-remove").click()
    expect(page.locator("#turns .turn")).to_have_count(0)
    assert page.problems == []
