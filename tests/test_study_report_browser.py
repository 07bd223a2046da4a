"""The study report in a real Chromium: every section draws, nothing is fetched."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import make_tiny_lm

from promptxray.study import StudyConfig, run_study

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("PROMPTXRAY_CHROMIUM", "/usr/bin/chromium")
COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "studies" / "example" / "report.html"
ROWS = [
    {
        "id": "a",
        "group": "g",
        "task": "qa",
        "structure": s,
        "template": t,
        "slots": {"constraint": "Answer in one word:", "input": "What color is the sky?"},
        "checks": {"one_word": True},
    }
    for s, t in (("first", "{constraint} {input}"), ("last", "{input} {constraint}"))
]


def _open(report: Path, shot: Path) -> tuple[int, list[str]]:
    """(images drawn, requests that left the file) after loading the report."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on(
            "request",
            lambda r: None if r.url.startswith(("file:", "data:")) else outside.append(r.url),
        )
        page.goto(report.as_uri())
        drawn = page.evaluate(
            "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length"
        )
        headings = page.locator("h2").all_inner_texts()
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert any("Gallery" in h for h in headings) and len(headings) == 5
    return drawn, outside


def test_a_fresh_report_draws_every_figure_offline(tmp_path):
    data = tmp_path / "s.jsonl"
    data.write_text("".join(json.dumps({**r, "id": r["structure"]}) + "\n" for r in ROWS))
    loaders = {"tiny-a": make_tiny_lm(seed=0), "tiny-b": make_tiny_lm(seed=1)}
    config = StudyConfig(models=list(loaders), max_new_tokens=4)
    run_study(data, tmp_path / "out", config, loaders=loaders, show_progress=False)
    drawn, outside = _open(tmp_path / "out" / "report.html", tmp_path / "report.png")
    assert drawn >= 4 + 4 and outside == []  # four figures, 2 structures x 2 models heatmaps
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_the_committed_report_opens_offline(tmp_path):
    if not COMMITTED.exists():
        pytest.skip("no committed study report")
    drawn, outside = _open(COMMITTED, tmp_path / "committed.png")
    assert drawn >= 5 and outside == []
