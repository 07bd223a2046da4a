"""What the browser test modules share (not a test module): Chromium, API calls, page steps.

The fixtures that serve the page and open Chromium are in `browser_fixtures.py`; these
are the plain functions the tests call, so each test module imports only this one.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

CHROMIUM = os.environ.get("PROMPTXRAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODEL_NAME = "tiny-random-llama"  # what the page shows once it has loaded /api/info


def call(base: str, method: str, path: str, body: dict | None = None) -> dict:
    """One JSON API call, as a script would make it."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read().decode() or "null")


def job(base: str, path: str, body: dict) -> dict:
    """Submit a job and wait for its result."""
    job_id = call(base, "POST", path, body)["job_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = call(base, "GET", f"/api/jobs/{job_id}")
        if state["status"] == "done":
            return state["result"]
        assert state["status"] in ("queued", "running"), state
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def open_page(page, url: str) -> None:
    """Go to the page and wait until it has loaded the model's name (its first request)."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.locator("#model-name")).to_have_text(MODEL_NAME)


def generate_in_page(page, prompt: str, max_new_tokens: int) -> None:
    """Type a prompt, click Generate, and wait until there is an output to explain."""
    from playwright.sync_api import expect

    page.fill("#prompt", prompt)
    page.fill("#max-new", str(max_new_tokens))
    page.click("#generate")
    expect(page.locator("#explain")).to_be_enabled()


def backgrounds(page, selector: str) -> list[str]:
    """The computed background colour of every element the selector finds, in order."""
    return page.locator(selector).evaluate_all(
        "nodes => nodes.map(n => getComputedStyle(n).backgroundColor)"
    )


def drag_select(page, selector: str, start: int, end: int) -> None:
    """Select characters [start, end) of an element's text with a real mouse drag."""
    rects = page.evaluate(
        """([selector, start, end]) => {
            const box = document.querySelector(selector);
            const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
            const spots = [];
            let seen = 0;
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                for (const want of [start, end - 1]) {
                    if (want >= seen && want < seen + node.length) {
                        const r = document.createRange();
                        r.setStart(node, want - seen);
                        r.setEnd(node, want - seen + 1);
                        const b = r.getBoundingClientRect();
                        spots.push({x: b.left, y: b.top + b.height / 2, w: b.width});
                    }
                }
                seen += node.length;
            }
            return spots;
        }""",
        [selector, start, end],
    )
    first, last = rects[0], rects[-1]
    page.mouse.move(first["x"] + 0.5, first["y"])
    page.mouse.down()
    page.mouse.move(last["x"] + last["w"] / 2, last["y"], steps=5)
    page.mouse.move(last["x"] + last["w"] - 0.5, last["y"], steps=2)
    page.mouse.up()


def explain_in_page(page, method: str, **params) -> None:
    """Pick a method, fill its parameters, click Explain, and wait for a fresh result."""
    from playwright.sync_api import expect

    page.select_option("#method", method)
    for name, value in params.items():
        page.fill(f"#param-{name}", str(value))
    page.click("#explain")
    expect(page.locator("#result-meta")).to_contain_text(f"{method} · ")
    expect(page.locator("#job")).to_be_hidden()
    expect(page.locator("#stale-banner")).to_be_hidden()
