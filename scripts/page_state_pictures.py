"""Draw the pictures of issue 29's closing note: the stale-result case and the remote case.

    PYTHONPATH=src .venv/bin/python scripts/page_state_pictures.py --suffix after

writes, under docs/images/,

- page-stale-SUFFIX.png: a result explained with grad_norm, then another output word
  clicked and the method changed to leave_one_out, not explained again: what the page
  shows of the old result, its estimate and its mask preview;
- remote-SUFFIX.png: `promptxray serve --host 0.0.0.0` started as a user starts it, and
  the first address it printed opened in Chromium as printed.

Run it once with another checkout's `src` on PYTHONPATH (`--suffix before`) to draw the
same two moments of that code. The default model is used (greedy, so the same each run).
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The browser, viewport, folder and PNG shrinking of the README's pictures (a sibling
# script, importable because Python puts this script's folder first on the path).
from readme_pictures import CHROMIUM_ARGS, IMAGES, VIEWPORT, _chromium, shrink_png

PROMPT = "Answer in one sentence: why is the sky blue?"


def shoot_stale(url: str, path: Path) -> None:
    """Explain, then pick another target and another method without explaining again."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=120_000)  # a loaded machine generates slowly
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(120_000)
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(url)
            expect(page.locator("#model-name")).not_to_have_text("loading…")
            page.fill("#prompt", PROMPT)
            page.fill("#max-new", "12")
            page.click("#generate")
            expect(page.locator("#explain")).to_be_enabled()
            page.click("#explain")
            expect(page.locator("#result-card")).to_be_visible()
            expect(page.locator("#job")).to_be_hidden()
            page.locator("#output .out-word").nth(2).click()
            page.select_option("#method", "leave_one_out")
            page.wait_for_timeout(800)  # an estimate the page may ask for
            page.locator("#output-card").scroll_into_view_if_needed()
            page.evaluate("document.querySelector('#output-card').scrollIntoView()")
            page.screenshot(path=str(path), full_page=False)
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shoot_remote(path: Path) -> str:
    """Start `serve --host 0.0.0.0` as a user would; open the first address it printed."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="promptxray-pictures-") as history:
        command = [sys.executable, "-m", "promptxray", "serve", "--host", "0.0.0.0"]
        command += ["--port", str(port), "--data-dir", history]
        server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            printed = ""
            deadline = time.monotonic() + 300
            while "http://" not in printed and time.monotonic() < deadline:
                line = server.stderr.readline()
                if not line:
                    break
                printed += line
            address = re.search(r"http://\S+", printed).group(0)
            time.sleep(2)  # uvicorn starts listening just after the message
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport=VIEWPORT)
                    page.goto(address)
                    page.wait_for_timeout(2500)
                    page.screenshot(path=str(path))
                finally:
                    browser.close()
            return printed
        finally:
            server.terminate()
            server.wait(30)


def main() -> None:
    from promptxray import load_model
    from promptxray.server import create_app, serve_in_thread

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suffix", default="after", help="before or after")
    parser.add_argument("--out", type=Path, default=IMAGES)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    stale = args.out / f"page-stale-{args.suffix}.png"
    remote = args.out / f"remote-{args.suffix}.png"
    with tempfile.TemporaryDirectory(prefix="promptxray-pictures-") as history:
        with serve_in_thread(create_app(load_model(), Path(history))) as url:
            shoot_stale(url, stale)
    print(shoot_remote(remote), end="")
    for path in (stale, remote):
        shrink_png(path)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
