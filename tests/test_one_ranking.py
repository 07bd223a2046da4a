"""Every view and the evaluation order one signed result the same way (Attribution.ranking).

Lists (console table, HTML export, the page's top list) show the strongest units by
|score| with their sign; what gets removed (the page's mask-top-k, the evaluation)
is the units that raise p(target) most. On a result where those two orders differ,
each consumer must agree with the one function, not with its own sort.
"""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from server_helpers import LOCAL, make_wordy_lm, run_job

from promptxray import Attribution
from promptxray.evaluation import EvalConfig, run_evaluation
from promptxray.evaluation.store import ResultStore
from promptxray.render.console import render_console
from promptxray.render.html import render_html
from promptxray.server import create_app

PROMPT = "The sea is calm tonight. Write one line about the sky. Keep it short and kind."
K = 3


@pytest.fixture(scope="module")
def lm():
    return make_wordy_lm(seed=3)


@pytest.fixture(scope="module")
def served(lm, tmp_path_factory):
    """A grad_x_input word result computed by the server, and its stored Attribution."""
    with TestClient(create_app(lm, tmp_path_factory.mktemp("history")), base_url=LOCAL) as client:
        run = run_job(client, "/api/generate", {"prompt": PROMPT, "max_new_tokens": 6})
        run_id = run["result"]["run_id"]
        body = {"run_id": run_id, "method": "grad_x_input", "granularity": "word"}
        view = run_job(client, "/api/explain", body)["result"]
        eid = view["explanation_id"]
        exported = client.get(f"/api/explanations/{eid}/export", params={"format": "json"})
        attr = Attribution.from_json(exported.text)
        mask = run_job(client, "/api/mask", {"explanation_id": eid, "top_k": K})["result"]
        yield attr, view, mask, run["result"]["output"]


def test_the_two_orders_really_differ_here(served):
    attr, *_ = served
    assert any(s < 0 for s in attr.scores) and any(s > 0 for s in attr.scores)
    assert attr.ranking("magnitude")[:K] != attr.ranking("support")[:K]


def test_lists_show_the_magnitude_order(served):
    attr, view, *_ = served
    expected = attr.ranking("magnitude")
    assert view["top"] == expected  # the page's list
    html = render_html(attr, top=len(attr.units))
    top_list = html[html.index("<ol") :]
    assert [int(i) for i in re.findall(r'data-unit="(\d+)"', top_list)] == expected
    console = Console(record=True, width=200)
    console.print(render_console(attr, top=len(attr.units)))
    text = console.export_text()
    table = text[text.index("Top ") :]
    rows = [line.split() for line in table.splitlines() if re.match(r"\s*\d+\s", line)]
    ranks = [int(r[0]) for r in rows]
    assert ranks == list(range(1, len(expected) + 1))
    scores = [float(r[-2] if r[-1] in ("user", "✓") else r[-1]) for r in rows]
    expected_scores = [attr.scores[i] for i in expected]
    assert scores == pytest.approx(expected_scores, rel=1e-3, abs=1e-3)


def test_removal_uses_the_support_order(served, lm, tmp_path):
    attr, view, mask, output = served
    expected = attr.ranking("support")[:K]
    assert view["removal"][:K] == expected
    assert mask["masked"] == sorted(expected)  # the page's mask-top-k
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"id": "p", "prompt": PROMPT}) + "\n", encoding="utf-8")
    cfg = EvalConfig(
        methods=["grad_x_input"], k=K, granularity="word", max_new_tokens=6, use_sbert=False
    )
    run_evaluation(data, tmp_path / "run", cfg, lm=lm, show_progress=False)
    store = ResultStore(tmp_path / "run" / "results.sqlite")
    (row,) = store.conn.execute("SELECT masked_units FROM rows").fetchall()
    store.close()
    assert json.loads(row[0]) == [attr.units[i].text for i in expected]
    assert attr.output == output
