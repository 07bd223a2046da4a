"""The server cannot be turned against its user, and loses nothing when the disk is full.

Host allowlist on every route (DNS rebinding), access token on a non-loopback
bind, cross-origin writes refused with no CORS headers, no CDN-loaded docs page;
a history that cannot be written still returns every result with a warning; and
the service's own checks (whitespace targets, mask reuse, compare, positions).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from server_helpers import LOCAL, generate, run_job, wait
from starlette.routing import Mount

from promptxray.errors import InvalidParameterError
from promptxray.masking import MaskedContext, mask_context
from promptxray.methods import REGISTRY
from promptxray.server import check_data_dir, create_app
from promptxray.server.app import JOBS_OUTLIVE_THE_PAGE
from promptxray.server.security import allowed_names, host_name
from promptxray.server.store import HistoryStore

ATTACKER = "attacker.example"


def every_route(app) -> list[tuple[str, str]]:
    """(method, concrete path) for every route the app serves, path parameters filled in."""
    calls = []
    for route in app.routes:
        if isinstance(route, Mount):
            calls.append(("GET", f"{route.path}/style.css"))
            continue
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        calls += [(method, path) for method in methods]
    return calls


# ----- Host allowlist ---------------------------------------------------------------------
def test_a_foreign_host_gets_400_on_every_route(client, app):
    calls = every_route(app)
    assert {"/api/runs", "/api/generate", "/", "/openapi.json", "/static/style.css"} <= {
        path for _, path in calls
    }
    assert any(isinstance(r, APIRoute) and r.path == "/api/compare" for r in app.routes)
    for method, path in calls:
        for host in (ATTACKER, f"{ATTACKER}:8000", "127.0.0.1.nip.io", "localhost.evil"):
            response = client.request(method, path, headers={"host": host}, json={})
            assert response.status_code == 400, (method, path, host)
            if method != "HEAD":  # a HEAD answer has no body
                assert "is not allowed" in response.json()["detail"]
    # the rebinding attack of the issue: a POST with a foreign Host and Origin runs nothing
    attack = client.post(
        "/api/generate",
        json={"prompt": "hi", "max_new_tokens": 2},
        headers={"host": ATTACKER, "origin": f"http://{ATTACKER}"},
    )
    assert attack.status_code == 400
    assert client.get("/api/runs").json() == []


def test_loopback_names_the_bound_address_and_extra_hosts_pass(wordy_lm, tmp_path):
    app = create_app(wordy_lm, tmp_path, host="127.0.0.1", allowed_hosts=["Box.LAN", "10.0.0.7"])
    with TestClient(app, base_url=LOCAL) as client:
        for host in (
            "localhost",
            "localhost:8000",
            "127.0.0.1",
            "127.0.0.1:8000",
            "[::1]",
            "[::1]:8000",
            "box.lan:8000",
            "10.0.0.7",
        ):
            assert client.get("/api/info", headers={"host": host}).status_code == 200, host
        assert client.get("/api/info", headers={"host": "other.lan"}).status_code == 400
    assert host_name("[::1]:8000") == "::1" and host_name("Example.COM:80") == "example.com"
    assert "192.168.1.4" in allowed_names("192.168.1.4")
    assert "localhost" in allowed_names("0.0.0.0") and "0.0.0.0" not in allowed_names("0.0.0.0")


# ----- access token ------------------------------------------------------------------------
def test_a_non_loopback_bind_requires_the_token_on_every_api_request(wordy_lm, tmp_path):
    app = create_app(wordy_lm, tmp_path, host="192.168.1.4")
    token = app.state.token
    assert token and len(token) >= 24
    assert create_app(wordy_lm, tmp_path, host="192.168.1.4").state.token != token  # fresh
    with TestClient(app, base_url="http://192.168.1.4:8000") as client:
        api_calls = [(m, p) for m, p in every_route(app) if p.startswith("/api/")]
        assert len(api_calls) >= 12
        for method, path in api_calls:
            bare = client.request(method, path, json={})
            assert bare.status_code == 401, (method, path)
            if method != "HEAD":
                assert "access token" in bare.json()["detail"]
            wrong = client.request(method, path, json={}, headers={"x-promptxray-token": "nope"})
            assert wrong.status_code == 401, (method, path)
        good = {"authorization": f"Bearer {token}"}
        assert client.get("/api/info", headers=good).status_code == 200
        assert client.get("/api/runs", headers={"x-promptxray-token": token}).status_code == 200
        assert client.get(f"/api/runs?token={token}").status_code == 200  # export links
        # the page itself and its files hold no data: they load, then ask for the token
        assert client.get("/").status_code == 200
        assert client.get("/static/main.js").status_code == 200
        started = client.post(
            "/api/generate", json={"prompt": "Hi there", "max_new_tokens": 2}, headers=good
        )
        assert started.status_code == 202


def test_an_explicit_token_is_used_even_on_loopback(wordy_lm, tmp_path):
    app = create_app(wordy_lm, tmp_path, token="s3cret-token")
    assert app.state.token == "s3cret-token"
    with TestClient(app, base_url=LOCAL) as client:
        assert client.get("/api/runs").status_code == 401
        assert client.get("/api/runs", headers={"authorization": "Bearer s3cret-token"}).is_success
    assert create_app(wordy_lm, tmp_path).state.token is None  # loopback: none by default


def test_serve_prints_the_address_with_its_token(tmp_path):
    from promptxray.server import start_message

    text = start_message("m", "0.0.0.0", 8000, tmp_path, "abc")
    # a wildcard bind is printed as addresses a browser can open, never as 0.0.0.0
    assert "?token=abc" in text and "access token" in text and "0.0.0.0:8000" not in text
    assert "--allowed-host" in text
    assert JOBS_OUTLIVE_THE_PAGE.lower() in text
    local = start_message("m", "127.0.0.1", 8000, tmp_path, None)
    assert "http://127.0.0.1:8000/\n" in local and "token" not in local


# ----- cross-origin requests and docs -----------------------------------------------------------
def test_cross_origin_writes_are_refused_and_no_cors_headers_are_sent(client):
    body = {"prompt": "Hello", "max_new_tokens": 2}
    for origin in (f"http://{ATTACKER}", "null", "http://localhost:9999"):
        refused = client.post("/api/generate", json=body, headers={"origin": origin})
        assert refused.status_code == 403, origin
        assert "Cross-origin" in refused.json()["detail"]
    # a form post (text/plain, no preflight) from elsewhere is refused the same way
    form = client.post(
        "/api/generate",
        content=b'{"prompt": "x"}',
        headers={"origin": f"http://{ATTACKER}", "content-type": "text/plain"},
    )
    assert form.status_code == 403
    preflight = client.options(
        "/api/generate",
        headers={"origin": f"http://{ATTACKER}", "access-control-request-method": "POST"},
    )
    assert preflight.status_code in (400, 404, 405)
    responses = [preflight, client.get("/api/runs", headers={"origin": f"http://{ATTACKER}"})]
    same = client.post("/api/generate", json=body, headers={"origin": LOCAL})
    assert same.status_code == 202  # the page's own origin
    wait(client, same.json()["job_id"])
    responses.append(same)
    for response in responses:
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    assert [r["prompt"] for r in client.get("/api/runs").json()] == ["Hello"]


def test_docs_pages_are_not_served_and_the_schema_is_offline(client):
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    schema = client.get("/openapi.json")
    assert schema.status_code == 200 and "/api/compare" in schema.json()["paths"]
    assert "cdn" not in schema.text.lower()


# ----- nothing lost -------------------------------------------------------------------------------
def disk_full(*_args, **_kwargs):
    raise sqlite3.OperationalError("database or disk is full")


def test_a_full_disk_still_returns_every_result_with_a_warning(client, app, monkeypatch):
    store: HistoryStore = app.state.store
    monkeypatch.setattr(store, "_write", disk_full)
    state = generate(client, "The sea is calm. Write about the sky.", 6)
    result = state["result"]
    assert result["output"] and result["saved"] is False
    assert "Not saved to the history" in result["warning"]
    assert "database or disk is full" in result["warning"]
    run_id = result["run_id"]
    # the run is kept for this session: listed as unsaved, and it can still be explained
    runs = client.get("/api/runs").json()
    assert [(r["id"], r["saved"]) for r in runs] == [(run_id, False)]
    view = run_job(client, "/api/explain", {"run_id": run_id})["result"]
    assert view["saved"] is False and "explanation" in view["warning"]
    edit = run_job(client, "/api/mask", {"explanation_id": view["explanation_id"], "top_k": 1})
    assert edit["result"]["saved"] is False and edit["result"]["regenerated"] is not None
    detail = client.get(f"/api/runs/{run_id}").json()
    assert len(detail["explanations"]) == 1 and len(detail["edits"]) == 1
    # once the disk has room again, new work is saved as usual
    monkeypatch.undo()
    again = generate(client, "Another prompt here.", 3)["result"]
    assert again["saved"] is True and again["warning"] is None
    assert store.get_run(again["run_id"]) is not None


def test_the_data_dir_is_checked_before_anything_loads(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(InvalidParameterError, match="Cannot keep the history in") as error:
        check_data_dir(blocker / "history")
    assert "\n" not in str(error.value)
    made = check_data_dir(tmp_path / "new" / "dir")
    assert made.is_dir() and list(made.iterdir()) == []  # the probe file is gone


# ----- the service's checks ---------------------------------------------------------------------
def test_a_whitespace_target_is_refused_with_one_line(client):
    state = generate(client, "Red green blue. Name a colour.", 8)
    output = state["result"]["output"]
    gap = next((m.span() for m in re.finditer(r"\s+", output)), None)
    if gap is None:
        pytest.skip("the random model wrote no whitespace")
    body = {"run_id": state["result"]["run_id"], "span": list(gap)}
    response = client.post("/api/explain", json=body)
    assert response.status_code == 400
    message = response.json()["detail"]
    assert "only whitespace" in message and "\n" not in message


def test_mask_and_regenerate_scores_with_two_forward_passes(client, wordy_lm):
    """PR and KL need the masked and the original distributions once each, no more."""
    from promptxray import build_problem

    state = generate(client, "One two three. Four five six.", 8)
    run_id = state["result"]["run_id"]
    view = run_job(client, "/api/explain", {"run_id": run_id})["result"]
    before = wordy_lm.cost.snapshot()
    edit = run_job(client, "/api/mask", {"explanation_id": view["explanation_id"], "top_k": 2})
    spent = wordy_lm.cost.snapshot()["forward_sequences"] - before["forward_sequences"]
    run = app_run(client, run_id)
    problem = build_problem(
        wordy_lm, run["prompt"], output_ids=run["output_ids"], span=tuple(view["target_span"])
    )
    units = client.app.state.store.get_explanation(view["explanation_id"])["attribution"].units
    context = mask_context(wordy_lm, problem, units, edit["result"]["masked"], "delete")
    before = wordy_lm.cost.snapshot()["forward_sequences"]
    wordy_lm.generate_from(context, max_new_tokens=8 - problem.target_token_range[0])
    generation = wordy_lm.cost.snapshot()["forward_sequences"] - before
    assert spent - generation == 2
    original = MaskedContext(ids=list(problem.context_ids))
    assert edit["result"]["pr"] == pytest.approx(
        float(
            (
                wordy_lm.score(context.ids + problem.target_ids, len(context.ids))
                - wordy_lm.score(original.ids + problem.target_ids, len(original.ids))
            )
            .double()
            .mean()
            .exp()
        ),
        rel=1e-3,
    )


def app_run(client, run_id: str) -> dict:
    return client.app.state.store.get_run(run_id)


def test_the_mask_result_shows_every_removed_part_of_the_context(client):
    body = {
        "prompt": "Name a fruit. Keep it short.",
        "system_prompt": "Answer in French. Be polite.",
        "max_new_tokens": 10,
    }
    result = run_job(client, "/api/generate", body)["result"]
    output = result["output"]
    words = list(re.finditer(r"\S+", output))
    if len(words) < 3:
        pytest.skip("the random model wrote too few words for earlier output")
    span = [words[-1].start(), words[-1].end()]  # the last word: earlier output is a source
    explain = {"run_id": result["run_id"], "span": span, "granularity": "sentence"}
    view = run_job(client, "/api/explain", explain)["result"]
    system = next(u for u in view["units"] if u["role"] == "system")
    earlier = next(u for u in view["units"] if u["role"] == "output")
    picked = [system["index"], earlier["index"]]
    mask = {"explanation_id": view["explanation_id"], "units": picked}
    edit = run_job(client, "/api/mask", mask)["result"]
    assert edit["masked_system"] == "Be polite."
    removed_system = [p["text"] for p in edit["system_pieces"] if p["removed"]]
    assert removed_system == ["Answer in French."]
    assert "".join(p["text"] for p in edit["system_pieces"]) == body["system_prompt"]
    removed_prefix = [p["text"] for p in edit["prefix_pieces"] if p["removed"]]
    assert removed_prefix == [earlier["text"]]
    assert "".join(p["text"] for p in edit["prefix_pieces"]) == edit["prefix"]
    assert edit["masked_prompt"] == body["prompt"]  # no user unit was removed


# ----- reading aids and compare on the API ---------------------------------------------------
def test_units_carry_their_position_and_near_zero_units_are_not_listed(client):
    prompt = "Topic: sea\nTopic: sky\nTopic: hills\nWrite about the last topic."
    run_id = generate(client, prompt, 4)["result"]["run_id"]
    view = run_job(client, "/api/explain", {"run_id": run_id})["result"]
    topics = [u for u in view["units"] if u["text"].strip() == "Topic:"]
    assert [u["position"] for u in topics] == [
        "Topic: #1 · prompt line 1",
        "Topic: #2 · prompt line 2",
        "Topic: #3 · prompt line 3",
    ]
    assert [u["where"] for u in topics][2] == "#3 · prompt line 3"
    peak = view["palette"]["peak"]
    for unit in view["units"]:
        near_zero = abs(unit["score"]) < view["palette"]["floor"] * peak
        assert unit["tinted"] == (unit["color"] != "rgb(255, 255, 255)")
        if near_zero:
            assert not unit["tinted"] and unit["index"] not in view["listed"]
    assert view["listed"] == [i for i in view["top"] if view["units"][i]["tinted"]]
    # intensity: the same result at another gamma, colours from the server
    eid = view["explanation_id"]
    soft = client.get(f"/api/explanations/{eid}", params={"gamma": 0.3}).json()
    assert soft["palette"]["gamma"] == 0.3
    assert [u["score"] for u in soft["units"]] == [u["score"] for u in view["units"]]
    assert [u["color"] for u in soft["units"]] != [u["color"] for u in view["units"]]
    assert client.get(f"/api/explanations/{eid}", params={"gamma": 50}).status_code == 422


def test_xprompt_views_carry_their_search_detail(client):
    if "xprompt" not in REGISTRY:
        pytest.skip("xprompt is not registered in this checkout")
    run_id = generate(client, "Red green blue yellow. Pick one.", 3)["result"]["run_id"]
    view = run_job(client, "/api/explain", {"run_id": run_id, "method": "xprompt", "k": 2})
    search = view["result"]["search"]
    assert {"start", "spent", "budget", "log_prob_drop", "trajectory", "starts"} <= set(search)
    assert len(search["chosen"]) == 2
    assert all(isinstance(s["units"], list) for s in search["starts"])
    plain = run_job(client, "/api/explain", {"run_id": run_id})["result"]
    assert plain["search"] is None


def test_compare_two_runs_on_one_scale_with_diffs_and_score_changes(client):
    first = generate(client, "The sea is calm tonight. Write about the sky.", 6)["result"]
    second = generate(client, "The sea is rough tonight. Write about the sky.", 6)["result"]
    views = [
        run_job(client, "/api/explain", {"run_id": r["run_id"], "method": "grad_x_input"})["result"]
        for r in (first, second)
    ]
    a = f"{first['run_id']}:{views[0]['explanation_id']}"
    b = f"{second['run_id']}:{views[1]['explanation_id']}"
    response = client.get("/api/compare", params={"a": a, "b": b})
    assert response.status_code == 200, response.text
    compare = response.json()
    assert compare["shared_scale"] is True
    scores = [u["score"] for side in ("a", "b") for u in compare[side]["view"]["units"]]
    assert compare["palette"]["peak"] == pytest.approx(max(abs(s) for s in scores))
    for side in ("a", "b"):
        assert compare[side]["view"]["palette"] == compare["palette"]
    prompt_diff = compare["diff"]["prompt"]
    assert {"op": "delete", "text": " calm"} in prompt_diff
    assert {"op": "insert", "text": " rough"} in prompt_diff
    changes = compare["changes"]
    texts = [c["text"].strip() for c in changes if c["role"] == "user"]
    assert "sea" in texts and "calm" not in texts and "rough" not in texts
    for change in changes:
        left = compare["a"]["view"]["units"][change["a_index"]]
        right = compare["b"]["view"]["units"][change["b_index"]]
        assert change["delta"] == pytest.approx(right["score"] - left["score"])
    assert [abs(c["delta"]) for c in changes] == sorted(
        (abs(c["delta"]) for c in changes), reverse=True
    )
    # runs without explanations compare by their texts; the choices list every explanation
    plain = client.get("/api/compare", params={"a": first["run_id"], "b": second["run_id"]})
    assert plain.json()["a"]["view"] is None and plain.json()["diff"]["prompt"] == prompt_diff
    choices = client.get("/api/compare/choices").json()
    assert {c["ref"] for c in choices} == {a, b}
    bad = client.get("/api/compare", params={"a": a, "b": "nope"})
    assert bad.status_code == 404
    crossed = client.get(
        "/api/compare", params={"a": f"{first['run_id']}:{views[1]['explanation_id']}", "b": b}
    )
    assert crossed.status_code == 400


def test_cancelled_job_is_a_state_not_an_error(client):
    import threading

    jobs = client.app.state.jobs
    release = threading.Event()
    blocker = jobs.submit("block", lambda ctx: release.wait(60))
    queued = client.post("/api/generate", json={"prompt": "Hello", "max_new_tokens": 2}).json()
    cancelled = client.post(f"/api/jobs/{queued['job_id']}/cancel").json()
    release.set()
    jobs.wait(blocker.id)
    assert cancelled["status"] == "cancelled" and cancelled["error"] is None
    assert Path(client.app.state.store.path).exists()
