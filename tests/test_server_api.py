"""The prompt debugger's JSON API on a tiny random model: the whole flow and every 4xx."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from samples import PROMPT
from server_helpers import LOCAL, detail, generate, run_job, wait

from promptxray import Attribution, attribute, build_problem
from promptxray.evaluation.metrics import kl_divergence, probability_ratio
from promptxray.masking import MaskedContext, mask_context
from promptxray.methods import REGISTRY
from promptxray.server import create_app
from promptxray.server.compare import word_diff, words
from promptxray.server.jobs import CANCELLED, DONE, ERROR, QUEUED, RUNNING, JobQueue
from promptxray.server.store import HistoryStore

STATIC = Path(__file__).parents[1] / "src" / "promptxray" / "server" / "static"


# ----- the whole flow -------------------------------------------------------------------
def test_generate_explain_regroup_mask_history_round_trip(client, wordy_lm):
    # generate: the output is the model's greedy continuation, streamed as partial text
    state = generate(client)
    run_id, output = state["result"]["run_id"], state["result"]["output"]
    enc = wordy_lm.encode_prompt(PROMPT)
    expected_ids = wordy_lm.generate(enc.ids, 12)
    assert output == wordy_lm.decode(expected_ids)
    assert state["partial"] == output
    assert state["done"] == state["total"] == 12

    # explain the second half of the output, with the heatmap
    span = [len(output) // 2, len(output)]
    body = {"run_id": run_id, "span": span, "method": "grad_norm", "granularity": "word"}
    view = run_job(client, "/api/explain", {**body, "matrix": True})["result"]
    problem = build_problem(wordy_lm, PROMPT, output_ids=expected_ids, span=tuple(span))
    direct = attribute(wordy_lm, problem, "grad_norm", "word", matrix=True)
    assert [u["text"] for u in view["units"]] == [u.text for u in direct.units]
    assert [u["score"] for u in view["units"]] == pytest.approx(direct.scores, rel=1e-5)
    assert {u["role"] for u in view["units"]} == {"user", "output"}
    assert view["target_span"] == list(direct.target_span)
    assert len(view["matrix"]) == len(view["target_tokens"]) == len(problem.target_ids)
    assert all(len(row) == len(view["units"]) for row in view["matrix"])
    scores = [u["score"] for u in view["units"]]
    assert view["top"][0] == max(range(len(scores)), key=scores.__getitem__)
    assert sorted(view["top"]) == list(range(len(scores)))
    assert view["max_abs"] == pytest.approx(max(abs(s) for s in scores))

    # regroup into sentences: same total, fewer units, and no model call at all
    before = wordy_lm.cost.snapshot()
    eid = view["explanation_id"]
    regrouped = client.get(f"/api/explanations/{eid}", params={"granularity": "sentence"})
    assert regrouped.status_code == 200, regrouped.text
    assert wordy_lm.cost.snapshot() == before
    sentences = regrouped.json()
    assert sentences["granularity"] == "sentence"
    prompt_units = [u["text"] for u in sentences["units"] if u["role"] == "user"]
    assert prompt_units == [
        "The sea is calm tonight.",
        "Write one line about the sky.",
        "Keep it short.",
    ]
    # grad_norm regroups by the norm of the group's gradient: squares add up.
    squares = sum(u["score"] ** 2 for u in sentences["units"])
    assert squares == pytest.approx(sum(s**2 for s in scores), rel=1e-5)

    # mask the top-3 words and regenerate from the same point
    edit = run_job(client, "/api/mask", {"explanation_id": eid, "top_k": 3})["result"]
    assert edit["masked"] == sorted(view["removal"][:3])
    units = direct.units
    masked_ctx = mask_context(wordy_lm, problem, units, edit["masked"], "delete")
    original = MaskedContext(ids=list(problem.context_ids))
    new_ids = wordy_lm.generate_from(masked_ctx, 12 - problem.target_token_range[0])
    assert edit["regenerated"] == wordy_lm.decode(new_ids)
    assert edit["original"] == output[direct.target_span[0] :]
    assert edit["prefix"] + edit["original"] == output
    assert "".join(p["text"] for p in edit["diff"] if p["op"] != "delete") == edit["regenerated"]
    masked_lp = wordy_lm.score(masked_ctx.ids + problem.target_ids, len(masked_ctx.ids))
    original_lp = wordy_lm.score(problem.ids, problem.target_start)
    assert edit["pr"] == pytest.approx(probability_ratio(masked_lp, original_lp), rel=1e-3)
    kl = kl_divergence(
        wordy_lm.target_log_distributions(masked_ctx, problem.target_ids),
        wordy_lm.target_log_distributions(original, problem.target_ids),
    )
    assert edit["kl"] == pytest.approx(kl, rel=1e-3, abs=1e-6)
    n_user = sum(u["role"] == "user" for u in edit["masked_units"])
    assert len(edit["masked_prompt"].split()) == len(PROMPT.split()) - n_user

    # masking picked units at sentence granularity removes whole sentences from the prompt
    first_sentence = next(u["index"] for u in sentences["units"] if u["role"] == "user")
    picked = run_job(
        client,
        "/api/mask",
        {"explanation_id": eid, "granularity": "sentence", "units": [first_sentence]},
    )["result"]
    assert picked["masked_prompt"] == "Write one line about the sky.\nKeep it short."
    assert picked["granularity"] == "sentence"

    # history: the run, its explanation and both edits come back; exports round-trip
    runs = client.get("/api/runs").json()
    assert [r["id"] for r in runs] == [run_id]
    assert runs[0]["last_method"] == "grad_norm" and runs[0]["n_explanations"] == 1
    detail = client.get(f"/api/runs/{run_id}").json()
    assert detail["prompt"] == PROMPT and detail["output"] == output
    assert detail["max_new_tokens"] == 12
    assert [e["id"] for e in detail["explanations"]] == [eid]
    assert detail["explanations"][0]["settings"]["span"] == span
    assert [e["result"]["masked"] for e in detail["edits"]] == [edit["masked"], [first_sentence]]
    again = client.get(f"/api/explanations/{eid}").json()
    assert again["units"] == view["units"] and again["matrix"] == view["matrix"]

    exported = client.get(f"/api/explanations/{eid}/export", params={"format": "json"})
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    loaded = Attribution.from_json(exported.text)
    assert loaded.base_units == direct.base_units and loaded.target_span == direct.target_span
    assert loaded.base_scores == pytest.approx(direct.base_scores, rel=1e-5)
    assert loaded.metadata["forward_passes"] == direct.metadata["forward_passes"]
    page = client.get(f"/api/explanations/{eid}/export", params={"format": "html"})
    assert page.status_code == 200 and page.text.lstrip().lower().startswith("<!doctype html")
    assert "Write" in page.text

    assert client.delete(f"/api/runs/{run_id}").status_code == 204
    assert client.get("/api/runs").json() == []
    assert client.get(f"/api/explanations/{eid}").status_code == 404


def test_history_survives_a_restart(wordy_lm, tmp_path):
    with TestClient(create_app(wordy_lm, tmp_path), base_url=LOCAL) as first:
        run_id = generate(first, "Name a colour.", 4)["result"]["run_id"]
    with TestClient(create_app(wordy_lm, tmp_path), base_url=LOCAL) as second:
        assert [r["id"] for r in second.get("/api/runs").json()] == [run_id]
        assert second.get(f"/api/runs/{run_id}").json()["prompt"] == "Name a colour."


def test_html_in_a_prompt_is_data_not_markup(client):
    prompt = 'Hi <img src=x onerror=alert(1)> & "you"'
    state = generate(client, prompt, 4)
    run_id = state["result"]["run_id"]
    assert client.get(f"/api/runs/{run_id}").json()["prompt"] == prompt
    view = run_job(client, "/api/explain", {"run_id": run_id})["result"]
    assert "<img" in view["prompt"]
    page = client.get(f"/api/explanations/{view['explanation_id']}/export?format=html").text
    assert "<img src=x" not in page
    assert "&lt;img" in page


def test_system_prompt_words_are_scored_too(client):
    body = {"prompt": "Name a fruit.", "system_prompt": "Answer in French.", "max_new_tokens": 4}
    run_id = run_job(client, "/api/generate", body)["result"]["run_id"]
    assert client.get(f"/api/runs/{run_id}").json()["system_prompt"] == "Answer in French."
    view = run_job(client, "/api/explain", {"run_id": run_id})["result"]
    assert view["system_prompt"] == "Answer in French."
    by_role = {}
    for unit in view["units"]:
        by_role.setdefault(unit["role"], []).append(unit["text"])
    assert by_role == {"system": ["Answer", "in", "French."], "user": ["Name", "a", "fruit."]}
    for unit in view["units"]:
        source = view["system_prompt"] if unit["role"] == "system" else view["prompt"]
        assert source[unit["span"][0] : unit["span"][1]] == unit["text"]


def test_perturbation_results_are_never_relabelled(client):
    """A leave_one_out word result has no sentence or token scores: 409, asking to recompute."""
    run_id = generate(client, "One two three. Four five.", 4)["result"]["run_id"]
    body = {"run_id": run_id, "method": "leave_one_out", "granularity": "word"}
    view = run_job(client, "/api/explain", body)["result"]
    eid = view["explanation_id"]
    assert client.get(f"/api/explanations/{eid}", params={"granularity": "word"}).status_code == 200
    for other in ("sentence", "token"):
        refused = client.get(f"/api/explanations/{eid}", params={"granularity": other})
        assert refused.status_code == 409
        assert f"recompute it at granularity {other}" in refused.json()["detail"]
        export = client.get(f"/api/explanations/{eid}/export", params={"granularity": other})
        assert export.status_code == 409
    mask = client.post(
        "/api/mask", json={"explanation_id": eid, "granularity": "sentence", "top_k": 1}
    )
    assert mask.status_code == 409


def test_unknown_method_parameters_get_400_naming_the_ones_it_takes(client):
    run_id = generate(client, "One two three.", 3)["result"]["run_id"]
    for body, fragment in (
        ({"method": "grad_norm", "k": 3}, "grad_norm takes no parameter 'k'"),
        ({"method": "grad_norm", "params": {"steps": 3}}, "it takes: batch_size"),
        ({"method": "leave_one_out", "params": {"masking": "blur"}}, "delete, replace, zero"),
    ):
        response = client.post("/api/explain", json={"run_id": run_id, **body})
        assert response.status_code == 400, response.text
        assert fragment in detail(response)
    ok = run_job(
        client,
        "/api/explain",
        {"run_id": run_id, "method": "integrated_gradients", "params": {"steps": 3}},
    )["result"]
    assert ok["metadata"]["params"] == {
        "batch_size": 16,
        "steps": 3,
        "tolerance": 0.0,
        "max_steps": 256,
    }
    assert ok["completeness"].endswith("(3 steps)")


def test_xprompt_marks_its_selected_units(client):
    if "xprompt" not in REGISTRY:
        pytest.skip("xprompt is not registered in this checkout")
    run_id = generate(client, "Red green blue yellow.", 3)["result"]["run_id"]
    body = {"run_id": run_id, "method": "xprompt", "k": 2}
    view = run_job(client, "/api/explain", body)["result"]
    assert len(view["selected"]) == 2
    assert sorted(view["top"][:2]) == sorted(view["selected"])


# ----- bad requests ---------------------------------------------------------------------
@pytest.fixture()
def run_and_explanation(client):
    state = generate(client, PROMPT, 6)
    run_id = state["result"]["run_id"]
    view = run_job(client, "/api/explain", {"run_id": run_id})["result"]
    return run_id, state["result"]["output"], view


def test_bad_generate_requests_get_4xx_with_a_message(client, wordy_lm):
    empty = client.post("/api/generate", json={"prompt": ""})
    assert empty.status_code == 400 and "prompt is empty" in detail(empty)
    blank = client.post("/api/generate", json={"prompt": "  \n "})
    assert blank.status_code == 400 and "prompt is empty" in detail(blank)
    long_prompt = "word " * (wordy_lm.max_context + 10)
    too_long = client.post("/api/generate", json={"prompt": long_prompt})
    assert too_long.status_code == 400
    assert f"at most {wordy_lm.max_context}" in detail(too_long)
    zero = client.post("/api/generate", json={"prompt": "hi", "max_new_tokens": 0})
    assert zero.status_code == 422 and "max_new_tokens" in detail(zero)
    missing = client.post("/api/generate", json={})
    assert missing.status_code == 400 and "prompt" in detail(missing)
    not_json = client.post(
        "/api/generate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert client.get("/api/runs").json() == []  # nothing bad was run or saved


def test_bad_explain_requests_get_4xx_with_a_message(client, run_and_explanation):
    run_id, output, _ = run_and_explanation
    unknown_method = client.post("/api/explain", json={"run_id": run_id, "method": "magic"})
    assert unknown_method.status_code == 400
    assert "Unknown method 'magic'" in detail(unknown_method)
    assert "grad_norm" in detail(unknown_method)
    bad_granularity = client.post("/api/explain", json={"run_id": run_id, "granularity": "page"})
    assert bad_granularity.status_code == 400 and "granularity" in detail(bad_granularity)
    outside = client.post("/api/explain", json={"run_id": run_id, "span": [0, len(output) + 5]})
    assert outside.status_code == 400 and "outside the output" in detail(outside)
    backwards = client.post("/api/explain", json={"run_id": run_id, "span": [5, 2]})
    assert backwards.status_code == 400
    unknown_run = client.post("/api/explain", json={"run_id": "nope"})
    assert unknown_run.status_code == 404 and "No run 'nope'" in detail(unknown_run)
    bad_k = client.post("/api/explain", json={"run_id": run_id, "method": "xprompt", "k": 0})
    assert bad_k.status_code == 400 and "k" in detail(bad_k)
    if "xprompt" in REGISTRY:
        body = {"run_id": run_id, "method": "xprompt", "k": 50, "granularity": "sentence"}
        too_many = client.post("/api/explain", json=body)
        assert too_many.status_code == 400
        assert "only 3 units" in detail(too_many)


def test_bad_reads_and_masks_get_4xx_with_a_message(client, run_and_explanation):
    _, _, view = run_and_explanation
    eid, n = view["explanation_id"], len(view["units"])
    assert client.get("/api/runs/nope").status_code == 404
    assert client.delete("/api/runs/nope").status_code == 404
    assert client.get("/api/explanations/nope").status_code == 404
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.post("/api/jobs/nope/cancel").status_code == 404
    regroup = client.get(f"/api/explanations/{eid}", params={"granularity": "chapter"})
    assert regroup.status_code == 400 and "Unknown granularity" in detail(regroup)
    fmt = client.get(f"/api/explanations/{eid}/export", params={"format": "pdf"})
    assert fmt.status_code == 422
    cases = [
        ({"explanation_id": eid}, 400, "either"),
        ({"explanation_id": eid, "top_k": 2, "units": [0]}, 400, "either"),
        ({"explanation_id": eid, "top_k": n + 1}, 400, f"only {n} units"),
        ({"explanation_id": eid, "units": [n]}, 400, "out of range"),
        ({"explanation_id": eid, "units": []}, 400, "at least one"),
        ({"explanation_id": eid, "top_k": 1, "operator": "erase"}, 422, "operator"),
        ({"explanation_id": "nope", "top_k": 1}, 404, "No explanation"),
    ]
    for body, status, words_in_detail in cases:
        response = client.post("/api/mask", json=body)
        assert response.status_code == status, body
        assert words_in_detail in detail(response), body


# ----- the job queue ---------------------------------------------------------------------
def test_a_second_job_waits_its_turn_and_a_queued_job_can_be_cancelled(client):
    jobs = client.app.state.jobs
    release = threading.Event()
    blocker = jobs.submit("block", lambda ctx: release.wait(60) and "released")
    while jobs.get(blocker.id).status == QUEUED:
        time.sleep(0.005)
    queued = client.post("/api/generate", json={"prompt": "Hello", "max_new_tokens": 2}).json()
    second = client.post("/api/generate", json={"prompt": "Bye", "max_new_tokens": 2}).json()
    state = client.get(f"/api/jobs/{second['job_id']}").json()
    assert state["status"] == QUEUED and state["queue_position"] == 2
    cancelled = client.post(f"/api/jobs/{queued['job_id']}/cancel").json()
    assert cancelled["status"] == CANCELLED
    release.set()
    assert wait(client, second["job_id"])["status"] == DONE
    assert jobs.get(blocker.id).result == "released"
    assert wait(client, queued["job_id"])["status"] == CANCELLED
    assert [r["prompt"] for r in client.get("/api/runs").json()] == ["Bye"]


def test_a_running_job_stops_at_its_next_progress_call():
    jobs = JobQueue()
    started, steps = threading.Event(), []

    def work(ctx):
        started.set()
        for i in range(10_000):
            steps.append(i)
            ctx.progress(i, 10_000)
            time.sleep(0.001)
        return "finished"

    job = jobs.submit("loop", work)
    started.wait(10)
    assert jobs.get(job.id).status == RUNNING
    jobs.cancel(job.id)
    final = jobs.wait(job.id)
    assert final.status == CANCELLED and final.result is None
    assert len(steps) < 10_000
    jobs.shutdown()


def test_job_errors_are_reported_not_raised():
    from promptxray.errors import SpanError

    jobs = JobQueue()

    def user_error(ctx):
        raise SpanError("Span 3:9 covers no output token.")

    def bug(ctx):
        return 1 / 0

    first, second = jobs.submit("a", user_error), jobs.submit("b", bug)
    assert jobs.wait(first.id).error == "Span 3:9 covers no output token."
    failed = jobs.wait(second.id)
    assert failed.status == ERROR and "ZeroDivisionError" in failed.error
    ok = jobs.submit("c", lambda ctx: 42)
    assert jobs.wait(ok.id).result == 42  # the worker survived both
    jobs.shutdown()


def test_a_finished_job_always_says_when_it_finished(monkeypatch):
    """wait() and the page read a job without the worker's help: the status they see as
    finished must come with its finish time (it once came a moment later)."""
    from promptxray.errors import SpanError
    from promptxray.server import jobs as jobs_module
    from promptxray.server.jobs import JobCancelled

    class SlowClock:  # widens the moment between a job's end and its recorded finish
        monotonic, sleep = staticmethod(time.monotonic), staticmethod(time.sleep)

        @staticmethod
        def time():
            time.sleep(0.2)
            return time.time()

    monkeypatch.setattr(jobs_module, "time", SlowClock)
    jobs = JobQueue()

    def cancelled(ctx):
        raise JobCancelled()

    def user_error(ctx):
        raise SpanError("no")

    for fn, status in ((lambda ctx: 42, DONE), (cancelled, CANCELLED), (user_error, ERROR)):
        final = jobs.wait(jobs.submit("t", fn).id)
        assert final.status == status and final.finished is not None
        assert final.finished >= final.started
    jobs.shutdown()


# ----- the page and other pieces -----------------------------------------------------------
def test_page_is_served_offline_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "promptxray" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    modules = sorted(p.name for p in STATIC.glob("*.js"))
    assert "main.js" in modules and len(modules) > 5  # the page's ES modules
    for name in ("index.html", "style.css", *modules):
        # the SVG namespace is a name, not an address anything is loaded from
        text = (STATIC / name).read_text().replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text, name
        served = client.get(f"/static/{name}")
        assert served.status_code == 200
        if name.endswith(".js"):  # a browser runs a module script only if it is JavaScript
            assert "javascript" in served.headers["content-type"], name
            assert "innerHTML" not in text, name
    assert client.get("/static/../app.py").status_code == 404
    schema = client.get("/openapi.json").json()
    assert {"/api/generate", "/api/explain", "/api/mask", "/api/jobs/{job_id}"} <= set(
        schema["paths"]
    )
    info = client.get("/api/info").json()
    assert info["model"] == "tiny-random-llama"
    assert [m["name"] for m in info["methods"]][:3] == [
        "grad_norm",
        "grad_x_input",
        "integrated_gradients",
    ]
    assert info["granularities"] == ["token", "word", "sentence", "line", "paragraph", "turn"]


def test_word_diff_keeps_words_and_whitespace():
    assert words("a  b\nc") == ["a", "  b", "\nc"]
    assert word_diff("the sky is blue", "the sea is blue today") == [
        {"op": "equal", "text": "the"},
        {"op": "delete", "text": " sky"},
        {"op": "insert", "text": " sea"},
        {"op": "equal", "text": " is blue"},
        {"op": "insert", "text": " today"},
    ]
    assert word_diff("", "") == []
    assert word_diff("same", "same") == [{"op": "equal", "text": "same"}]


def test_store_keeps_runs_newest_first(tmp_path):
    store = HistoryStore(tmp_path)
    first = store.add_run(
        model="m", prompt="a", system_prompt=None, max_new_tokens=3, output="x", output_ids=[1]
    )
    second = store.add_run(
        model="m", prompt="b", system_prompt="s", max_new_tokens=3, output="y", output_ids=[2]
    )
    assert [r["id"] for r in store.list_runs()] == [second, first]
    assert store.get_run(second)["output_ids"] == [2]
    assert store.get_run(second)["system_prompt"] == "s"
    assert json.loads(json.dumps(store.list_runs()))[0]["last_method"] is None
    assert store.delete_run(first) and not store.delete_run(first)
    store.close()


# ----- the real default model ---------------------------------------------------------------
@pytest.mark.integration
def test_real_model_points_at_capital_and_france(default_lm, tmp_path):
    prompt = "What is the capital of France? Answer in one word."
    with TestClient(create_app(default_lm, tmp_path), base_url=LOCAL) as c:
        state = run_job(c, "/api/generate", {"prompt": prompt, "max_new_tokens": 12})
        output = state["result"]["output"]
        assert "Paris" in output
        start = output.index("Paris")
        body = {"run_id": state["result"]["run_id"], "span": [start, start + 5]}
        view = run_job(c, "/api/explain", body)["result"]
        assert view["target_tokens"] == [" Paris"]
        top4 = [view["units"][i]["text"] for i in view["top"][:4]]
        assert {"capital", "France?"} <= set(top4)


# ----- `promptxray serve` -------------------------------------------------------------------
def test_serve_command_checks_the_address_before_loading_a_model(monkeypatch, tmp_path):
    import socket

    from typer.testing import CliRunner

    import promptxray.server
    from promptxray import cli

    loads, served = [], []
    monkeypatch.setattr(
        "promptxray.cli.common.load_lm", lambda name, progress=None, **_: loads.append(name) or "LM"
    )
    monkeypatch.setattr(promptxray.server, "serve", lambda lm, **kw: served.append((lm, kw)))
    runner = CliRunner()

    bad = runner.invoke(cli.app, ["serve", "--port", "0"])
    assert bad.exit_code == 2 and "between 1 and 65535" in bad.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = runner.invoke(cli.app, ["serve", "--port", str(taken)])
        assert result.exit_code == 2 and f"Cannot listen on 127.0.0.1:{taken}" in result.output
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("x")
    unwritable = runner.invoke(cli.app, ["serve", "--data-dir", str(not_a_folder / "history")])
    assert unwritable.exit_code == 2 and "Cannot keep the history in" in unwritable.output
    assert loads == [] and served == []

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    args = ["serve", "--model", "some/model", "--port", str(free), "--data-dir", str(tmp_path)]
    ok = runner.invoke(cli.app, args)
    assert ok.exit_code == 0, ok.output
    assert loads == ["some/model"]
    expected = {"host": "127.0.0.1", "port": free, "data_dir": tmp_path}
    assert served == [("LM", {**expected, "allowed_hosts": (), "token": None})]
    extra = ["--allowed-host", "box.lan", "--allowed-host", "10.0.0.7", "--token", "t0k"]
    assert runner.invoke(cli.app, args + extra).exit_code == 0
    assert served[-1] == (
        "LM",
        {**expected, "allowed_hosts": ["box.lan", "10.0.0.7"], "token": "t0k"},
    )


def test_hierarchical_leave_one_out_marks_unrefined_units_on_the_page(client):
    run_id = generate(client, max_new_tokens=4)["result"]["run_id"]
    body = {
        "run_id": run_id,
        "method": "leave_one_out",
        "granularity": "word",
        "params": {"coarse": "sentence", "refine": 1},
    }
    view = run_job(client, "/api/explain", body)["result"]
    refined = set(view["metadata"]["refined"])
    flags = [u["inherited"] for u in view["units"]]
    assert flags == [u["index"] not in refined for u in view["units"]] and any(flags)
    assert "refined" in view["refinement"]
