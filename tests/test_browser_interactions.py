"""A joint result's interactions on the page, in a real Chromium: the list, and hovering a unit
highlights its partners.

The explanation is made through the API; its view gets interactions over its own units
on the way to the page (the server sends what `Attribution.interactions` gives; which
pairs a method measures is tested in test_interactions.py).
"""

from __future__ import annotations

import json
import re

import pytest
from browser_helpers import job, open_page

pytestmark = pytest.mark.browser


def _with_interactions(view: dict) -> dict:
    """Two pairs over the view's first units: an "either" (+) and a "together" (−) one."""
    texts = [u["text"] for u in view["units"]]
    pairs = [
        {"units": [0, 2], "value": 2.31, "label": "either suffices", "together": False},
        {"units": [1, 3], "value": -1.4, "label": "needed together", "together": True},
    ]
    for pair in pairs:
        a, b = pair["units"]
        pair |= {"texts": [texts[a], texts[b]], "pair_drop": 3.0, "drops": [0.4, 0.3]}
        pair |= {"line": f"{pair['label']}: ...", "detail": "removing both lowers log p by 3.00"}
    partners = {"0": [2], "2": [0], "1": [3], "3": [1]}
    return {
        **view,
        "interactions": {"note": "among the top 4 units", "pairs": pairs, "partners": partners},
    }


def _inject(value):
    """Every explanation view inside an API answer, with interactions."""
    if isinstance(value, dict):
        if "explanation_id" in value and "units" in value and "interactions" in value:
            return _with_interactions(value)
        return {k: _inject(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_inject(v) for v in value]
    return value


def test_the_pairs_are_listed_and_hovering_a_unit_outlines_its_partner(page, server_url, tmp_path):
    from playwright.sync_api import expect

    run = job(
        server_url,
        "/api/generate",
        {"prompt": "Red apples grow on tall trees.", "max_new_tokens": 8},
    )
    job(server_url, "/api/explain", {"run_id": run["run_id"], "method": "xprompt", "k": 2})

    def add_interactions(route):
        response = route.fetch()
        try:
            body = _inject(response.json())
        except json.JSONDecodeError:
            return route.fulfill(response=response)
        route.fulfill(response=response, body=json.dumps(body))

    page.route(re.compile(r".*/api/.*"), add_interactions)
    open_page(page, f"{server_url}/#run={run['run_id']}")
    box = page.locator("#interactions")
    expect(box).to_be_visible()
    expect(box).to_contain_text("Units that act together")
    expect(box.locator("li")).to_have_count(2)
    expect(box.locator("li.either")).to_contain_text("+2.31 nats")
    expect(box.locator("li.together")).to_contain_text("−1.40 nats")
    unit = '#text-view .unit[data-index="{}"]'.format
    page.hover(unit(0))
    expect(page.locator(unit(2))).to_have_class(re.compile(r"\bpartner\b"))
    expect(page.locator(unit(3))).not_to_have_class(re.compile(r"\bpartner\b"))
    page.mouse.move(0, 0)
    expect(page.locator(unit(2))).not_to_have_class(re.compile(r"\bpartner\b"))
    box.locator("li.either").hover()
    for index in (1, 3):
        expect(page.locator(unit(index))).to_have_class(re.compile(r"\bpartner\b"))
    page.locator("#result-card").screenshot(path=str(tmp_path / "interactions.png"))
    assert page.problems == []
