"""Fixtures of the browser test modules (registered in conftest.py, not imported).

Each browser test module gets its own server (module scope): the page's app on the
wordy tiny model with an empty history, served in a thread by `serve_in_thread`, the
same way the README picture script and the latency benchmark serve it. `page` is a
fresh Chromium page per test that records every page error, dialog and request to
another origin in `page.problems`, which the tests assert is empty.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS
from fastapi import FastAPI
from server_helpers import make_wordy_lm

from promptxray.server import create_app, serve_in_thread


@pytest.fixture(scope="module")
def served_app(tmp_path_factory) -> FastAPI:
    """The app the module's server runs (tests that hold its job queue or store reach it)."""
    return create_app(make_wordy_lm(), tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def server_url(served_app) -> Iterator[str]:
    with serve_in_thread(served_app) as url:
        yield url


@pytest.fixture()
def page(server_url):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(60_000)
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "dialog",
            lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()),
        )
        page.on(
            "request",
            lambda r: None if r.url.startswith((server_url, "data:")) else problems.append(r.url),
        )
        page.problems = problems
        yield page
        browser.close()
