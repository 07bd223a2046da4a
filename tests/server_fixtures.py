"""Fixtures of the server's test modules (registered in conftest.py, not imported).

`wordy_lm` is made once per module (the tiny model with varied words, see
`server_helpers.make_wordy_lm`); `app` and `client` are fresh for each test, with an
empty history in the test's tmp_path, so no test sees another's runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_helpers import LOCAL, make_wordy_lm

from promptxray.api import LanguageModel
from promptxray.server import create_app


@pytest.fixture(scope="module")
def wordy_lm() -> LanguageModel:
    return make_wordy_lm()


@pytest.fixture()
def app(wordy_lm, tmp_path) -> FastAPI:
    return create_app(wordy_lm, tmp_path)


@pytest.fixture()
def client(app) -> Iterator[TestClient]:
    with TestClient(app, base_url=LOCAL) as c:
        yield c
