"""Draw the README's two pictures with the default model, so they show what the code does now.

    .venv/bin/python scripts/readme_pictures.py

writes

- docs/images/page.png: the prompt debugger in Chromium after generating an answer to one
  short prompt and explaining it (grad_norm, word units);
- docs/images/heatmap.png: one output-token x prompt-word heatmap, drawn through the
  library's own API (`promptxray.explain` with `matrix=True`, then `render.save_heatmap`).

The page is served the way the browser tests serve it (the app from `create_app` with a
throw-away history, under `serve_in_thread`: uvicorn in a thread on a free loopback port)
and driven with Playwright; Chromium is `$PROMPTXRAY_CHROMIUM`, else /usr/bin/chromium,
else Playwright's own.
Greedy decoding makes both pictures the same on every run with the same model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from promptxray import LanguageModel, explain, load_model
from promptxray.render import save_heatmap
from promptxray.server import create_app, serve_in_thread

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
PAGE_PROMPT = "Answer in one word: What color is the sky?"
HEATMAP_PROMPT = "Write a six-word story about love"
HEATMAP_TOKENS = 16  # a short answer keeps one row per output token readable
VIEWPORT = {"width": 1200, "height": 900}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-sync"]


def draw_heatmap(lm: LanguageModel, path: Path) -> Path:
    """One heatmap through the public API, as `promptxray heatmap` draws it."""
    attr = explain(HEATMAP_PROMPT, model=lm, matrix=True, max_new_tokens=HEATMAP_TOKENS)
    return save_heatmap(attr, path)


@contextmanager
def running_server(lm: LanguageModel) -> Iterator[str]:
    """The prompt debugger on a free loopback port with an empty history; yields its address."""
    with tempfile.TemporaryDirectory(prefix="promptxray-pictures-") as history:
        with serve_in_thread(create_app(lm, Path(history))) as url:
            yield url


def _chromium() -> str | None:
    """A system Chromium if there is one; None lets Playwright use its own download."""
    wanted = os.environ.get("PROMPTXRAY_CHROMIUM", "/usr/bin/chromium")
    return wanted if Path(wanted).exists() or shutil.which(wanted) else None


def shoot_page(url: str, path: Path) -> Path:
    """Generate, explain (the page's defaults: grad_norm, word units), then screenshot."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(120_000)
            page.on("dialog", lambda dialog: dialog.accept())  # "this will take long": yes
            page.goto(url)
            expect(page.locator("#model-name")).not_to_have_text("loading…")
            page.fill("#prompt", PAGE_PROMPT)
            page.fill("#max-new", "8")
            page.click("#generate")
            expect(page.locator("#explain")).to_be_enabled()
            page.click("#explain")
            expect(page.locator("#result-card")).to_be_visible()
            expect(page.locator("#job")).to_be_hidden()
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
    return path


def shrink_png(path: Path) -> None:
    """Re-save with an adaptive palette: a page of flat colours loses nothing visible."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the pictures")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    lm = load_model()
    heatmap = draw_heatmap(lm, out / "heatmap.png")
    with running_server(lm) as url:
        page = shoot_page(url, out / "page.png")
    for path in (page, heatmap):
        shrink_png(path)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
