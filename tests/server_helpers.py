"""What the server's test modules share (not a test module): a tiny model that writes
varied words, the Host the server answers to, and polling a job as the page does."""

from __future__ import annotations

import time

import torch
from conftest import make_tiny_lm
from fastapi.testclient import TestClient
from samples import PROMPT

from promptxray.server.jobs import CANCELLED, DONE, ERROR

LOCAL = "http://127.0.0.1:8000"  # a Host the server answers to (TestClient's default is not)


def make_wordy_lm(seed: int = 0):
    """The tiny random Llama with an untied random output head.

    With tied embeddings a random model mostly repeats its last input token (here
    a newline); an independent head makes it write varied, prompt-dependent words,
    so spans, diffs and regeneration have something to show.
    """
    lm = make_tiny_lm(seed)
    g = torch.Generator().manual_seed(seed)
    shape = lm.model.lm_head.weight.shape
    lm.model.lm_head.weight = torch.nn.Parameter(torch.randn(shape, generator=g) * 0.5)
    return lm


def wait(client: TestClient, job_id: str, limit: float = 120.0) -> dict:
    """Poll a job like the page does until it finishes."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job_id}").json()
        if state["status"] in (DONE, ERROR, CANCELLED):
            return state
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish")


def run_job(client: TestClient, path: str, body: dict) -> dict:
    response = client.post(path, json=body)
    assert response.status_code == 202, response.text
    state = wait(client, response.json()["job_id"])
    assert state["status"] == DONE, state["error"]
    return state


def generate(client: TestClient, prompt: str = PROMPT, max_new_tokens: int = 12) -> dict:
    return run_job(client, "/api/generate", {"prompt": prompt, "max_new_tokens": max_new_tokens})


def detail(response) -> str:
    return response.json()["detail"]
