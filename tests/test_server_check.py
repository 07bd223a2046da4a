"""The page's faithfulness checks over HTTP: carried by a view, recomputed when regrouped,
asked per heatmap row, kept in the history, refused with the library's words."""

from __future__ import annotations

from dataclasses import asdict, fields

import pytest
from samples import PROMPT
from server_helpers import detail, run_job

from promptxray import api
from promptxray.errors import InvalidParameterError
from promptxray.server import schemas


@pytest.fixture()
def run_id(client) -> str:
    body = {"prompt": PROMPT, "response": " The sky is grey and low. Rain comes soon."}
    return run_job(client, "/api/generate", body)["result"]["run_id"]


def explain(client, run_id: str, **body) -> dict:
    return run_job(client, "/api/explain", {"run_id": run_id, **body})["result"]


def check_job(client, **body) -> dict:
    """POST /api/check and wait for its result (a known check comes back finished)."""
    return run_job(client, "/api/check", body)["result"]


def stored(client, explanation_id: str):
    return client.app.state.store.get_explanation(explanation_id)


def problem_of(client, explanation_id: str):
    service = client.app.state.service
    return service.stored_problem(stored(client, explanation_id))


def figures(check: dict) -> dict:
    """A check's own fields, without the badge and without its timing."""
    names = {f.name for f in fields(api.FaithfulnessCheck)} - {"seconds"}
    return {name: check[name] for name in names}


def test_the_view_types_every_field_of_the_check():
    library = {f.name for f in fields(api.FaithfulnessCheck)}
    assert library <= set(schemas.CheckView.model_fields)
    assert set(schemas.CheckView.model_fields) - library == {"label", "tone"}


def test_an_explanation_shows_its_own_check_with_its_badge(client, run_id):
    view = explain(client, run_id, method="grad_norm", granularity="word", check_k=2)
    check = view["check"]
    saved = stored(client, view["explanation_id"])
    assert saved["settings"]["check"] is True and saved["settings"]["check_k"] == 2
    assert figures(check) == figures(asdict(saved["attribution"].record.check))
    assert check["k"] == 2 and len(check["curve"]) == 3 and check["curve"][0] == 1.0
    assert check["granularity"] == "word" and check["token"] is None
    assert check["label"] == check["verdict"].split(":")[0]
    tones = {"faithful": "good", "partly faithful": "partial"}
    assert check["tone"] == tones.get(check["label"], "bad")
    again = client.get(f"/api/explanations/{view['explanation_id']}").json()
    assert again["check"] == check and again["check_due"] is False
    assert again["metadata"]["check"]["verdict"] == check["verdict"]


def test_regrouping_shows_a_check_recomputed_at_the_new_units(client, run_id, wordy_lm):
    view = explain(client, run_id, method="grad_x_input", granularity="word")
    eid = view["explanation_id"]
    path = f"/api/explanations/{eid}"
    regrouped = client.get(path, params={"granularity": "sentence"}).json()
    # Never the word check relabelled: none yet, and the page is told to ask for one.
    assert regrouped["check"] is None and regrouped["check_due"] is True
    result = check_job(client, explanation_id=eid, granularity="sentence")
    assert result["granularity"] == "sentence" and result["token"] is None
    check = result["check"]
    assert check["granularity"] == "sentence"
    expected = api.check_result(
        wordy_lm, problem_of(client, eid), stored(client, eid)["attribution"].aggregate("sentence")
    )
    assert figures(check) == figures(asdict(expected))
    # Kept with the explanation: the view at sentences now shows it, without the model.
    before = wordy_lm.cost.snapshot()
    shown = client.get(path, params={"granularity": "sentence"}).json()
    assert shown["check"] == check and shown["check_due"] is False
    export = api.Attribution.from_json(
        client.get(f"{path}/export", params={"granularity": "sentence"}).text
    )
    assert asdict(export.record.check) == {k: check[k] for k in asdict(export.record.check)}
    known = client.post("/api/check", json={"explanation_id": eid, "granularity": "sentence"})
    state = client.get(f"/api/jobs/{known.json()['job_id']}").json()
    assert state["status"] == "done" and state["result"]["check"] == check
    assert wordy_lm.cost.snapshot() == before
    # Back at words: the explanation's own check again; at tokens, not the word one.
    assert client.get(path).json()["check"] == view["check"]
    tokens = client.get(path, params={"granularity": "token"}).json()
    assert tokens["check"] is None and tokens["check_due"] is True


def test_one_heatmap_row_proves_itself_against_its_token(client, run_id, wordy_lm):
    view = explain(client, run_id, method="grad_x_input", granularity="word", matrix=True)
    eid = view["explanation_id"]
    result = check_job(client, explanation_id=eid, token=1)
    check = result["check"]
    assert result["token"] == 1 and check["token"] == 1 and "p(output token 1)" in check["verdict"]
    expected = api.check_result(
        wordy_lm, problem_of(client, eid), stored(client, eid)["attribution"], token=1
    )
    assert figures(check) == figures(asdict(expected))
    # A row's check is not the target's: the view's check stays the explanation's own.
    assert client.get(f"/api/explanations/{eid}").json()["check"] == view["check"]
    at_sentences = check_job(client, explanation_id=eid, granularity="sentence", token=0)
    assert at_sentences["check"]["granularity"] == "sentence"


def test_bad_check_requests_get_4xx_with_the_library_words(client, run_id, wordy_lm):
    plain = explain(client, run_id, method="grad_norm", granularity="word")
    heat = explain(client, run_id, method="grad_norm", granularity="word", matrix=True)
    rows = len(heat["matrix"])
    for eid, token in ((plain["explanation_id"], 0), (heat["explanation_id"], rows)):
        attr = stored(client, eid)["attribution"]
        with pytest.raises(InvalidParameterError) as library:
            api.check_result(wordy_lm, problem_of(client, eid), attr, token=token)
        answer = client.post("/api/check", json={"explanation_id": eid, "token": token})
        assert answer.status_code == 400
        assert answer.json() == {"detail": str(library.value), "field": "token"}
    n_units = len(plain["units"])
    too_many = client.post(
        "/api/check", json={"explanation_id": plain["explanation_id"], "k": n_units}
    )
    assert too_many.status_code == 400 and too_many.json()["field"] == "k"
    assert f"must be below the number of units ({n_units})" in detail(too_many)
    for path in ("/api/explain", "/api/estimate"):
        body = {"run_id": run_id, "check_k": n_units}
        answer = client.post(path, json=body)
        assert answer.status_code == 400 and answer.json()["field"] == "check_k", path
        zero = client.post(path, json={**body, "check_k": 0})
        assert zero.status_code == 422 and zero.json()["field"] == "check_k"
    missing = client.post("/api/check", json={"explanation_id": "nope"})
    assert missing.status_code == 404
    masked = explain(client, run_id, method="leave_one_out", granularity="sentence")
    refused = {"explanation_id": masked["explanation_id"], "granularity": "word"}
    assert client.post("/api/check", json=refused).status_code == 409


def test_the_check_can_be_left_off_and_asked_later(client, run_id):
    view = explain(client, run_id, method="grad_norm", granularity="word", check=False)
    assert view["check"] is None and view["check_due"] is False
    eid = view["explanation_id"]
    regrouped = client.get(f"/api/explanations/{eid}", params={"granularity": "sentence"})
    assert regrouped.json()["check_due"] is False  # not asked for: the page does not start one
    check = check_job(client, explanation_id=eid)["check"]
    assert check["granularity"] == "word" and check["curve"][0] == 1.0
    assert client.get(f"/api/explanations/{eid}").json()["check"] == check
    off = client.post("/api/estimate", json={"run_id": view["run_id"], "check": False}).json()
    on = client.post("/api/estimate", json={"run_id": view["run_id"]}).json()
    assert on["available"] and off["available"]  # no job holds the model here
    assert on["forward_sequences"] > off["forward_sequences"]


def test_deleting_a_run_drops_its_kept_checks(client, run_id):
    view = explain(client, run_id, method="grad_norm", granularity="word")
    eid = view["explanation_id"]
    check_job(client, explanation_id=eid, granularity="sentence")
    store = client.app.state.store
    assert store.get_check(eid, "sentence", None, None) is not None
    assert client.delete(f"/api/runs/{run_id}").status_code == 204
    assert store.get_check(eid, "sentence", None, None) is None


def test_an_export_never_carries_a_check_of_other_units(client, run_id):
    view = explain(client, run_id, method="grad_norm", granularity="word")
    path = f"/api/explanations/{view['explanation_id']}/export"
    own = api.Attribution.from_json(client.get(path).text)
    assert own.record.check is not None and own.record.check.granularity == "word"
    at_tokens = api.Attribution.from_json(client.get(path, params={"granularity": "token"}).text)
    assert at_tokens.granularity == "token" and at_tokens.record.check is None
    page = client.get(path, params={"granularity": "token", "format": "html"}).text
    assert "random 3-word sets" not in page
    assert "random 3-word sets" in client.get(path, params={"format": "html"}).text
