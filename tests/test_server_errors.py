"""Errors in the caller's words (issue 27, item 5): the field at fault, one readable line.

A library error carries the parameter at fault (`param`); the web layer answers with
the library's message as `detail` and the request field for that parameter as
`field` (the name the client sent: `response` for the library's `target`, `k` or
`params.k` as given). Pydantic's complaints become "max_new_tokens: must be at most
2048" instead of "Input should be less than or equal to 2048".
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from server_helpers import LOCAL, make_wordy_lm, run_job

from promptxray import api
from promptxray.attribution import Attribution
from promptxray.errors import InvalidParameterError, UnknownGranularityError
from promptxray.server import create_app
from promptxray.server.answers import field_name, validation_line

PROMPT = "The sea is calm tonight. Write one line about the sky."
RESPONSE = "The sky is grey and low today."


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(make_wordy_lm(), tmp_path_factory.mktemp("history"))
    with TestClient(app, base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def explained(client):
    body = {"prompt": PROMPT, "response": RESPONSE}
    run_id = run_job(client, "/api/generate", body)["result"]["run_id"]
    view = run_job(client, "/api/explain", {"run_id": run_id})["result"]
    return run_id, view


def answer(response, status: int) -> tuple[str, str | None]:
    assert response.status_code == status, response.text
    body = response.json()
    assert "\n" not in body["detail"], body["detail"]
    return body["detail"], body.get("field")


@pytest.mark.parametrize(
    ("body", "line", "field"),
    [
        ({"prompt": "hi", "max_new_tokens": 5000}, "max_new_tokens: must be at most 2048", None),
        ({"prompt": "hi", "max_new_tokens": 0}, "max_new_tokens: must be at least 1", None),
        (
            {"prompt": "hi", "max_new_tokens": "lots"},
            "max_new_tokens: must be a whole number",
            None,
        ),
        ({"prompt": 5}, "prompt: must be text", None),
        ({"prompt": "x" * 200_001}, "prompt: must be at most 200000 characters", None),
    ],
)
def test_bad_generate_fields_read_as_one_line_naming_the_field(client, body, line, field):
    detail, named = answer(client.post("/api/generate", json=body), 422)
    assert detail == line
    assert named == line.split(":")[0]


def test_a_body_that_is_not_json_says_so(client):
    response = client.post(
        "/api/generate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert answer(response, 422) == ("the request body is not valid JSON", None)
    listed = client.post("/api/generate", json=["hi"])
    assert answer(listed, 422) == ("the request body must be an object", None)


def test_every_complaint_of_a_body_is_on_its_one_line(client, explained):
    body = {"explanation_id": "x", "operator": "erase", "top_k": 0, "units": [1, "a"]}
    detail, field = answer(client.post("/api/mask", json=body), 422)
    assert detail == (
        "units[1]: must be a whole number; top_k: must be at least 1; "
        "operator: must be one of 'delete', 'replace' or 'zero'"
    )
    assert field == "units[1]"
    run_id, _ = explained
    detail, field = answer(client.post("/api/explain", json={"run_id": run_id, "span": [1]}), 422)
    assert detail.startswith("span") and field and field.startswith("span")
    gamma = client.get(f"/api/explanations/{explained[1]['explanation_id']}", params={"gamma": 9})
    assert answer(gamma, 422) == ("gamma: must be at most 5.0", "gamma")


def test_library_errors_name_the_field_the_client_sent(client, explained):
    run_id, view = explained
    empty_response = client.post("/api/generate", json={"prompt": "hi", "response": ""})
    assert answer(empty_response, 400) == (
        "The target text is empty: give the text to explain.",
        "response",
    )
    empty_contrast = client.post("/api/explain", json={"run_id": run_id, "contrast": ""})
    assert answer(empty_contrast, 400)[1] == "contrast"
    eid, n = view["explanation_id"], len(view["units"])
    too_many = client.post("/api/mask", json={"explanation_id": eid, "top_k": n + 1})
    assert answer(too_many, 400) == (f"top_k is {n + 1} but there are only {n} units.", "top_k")
    out_of_range = client.post("/api/mask", json={"explanation_id": eid, "units": [n]})
    assert answer(out_of_range, 400)[1] == "units"
    blank = RESPONSE.index(" ")
    whitespace = client.post("/api/explain", json={"run_id": run_id, "span": [blank, blank + 1]})
    assert answer(whitespace, 400)[1] == "span"


def test_a_method_parameter_is_named_as_it_was_sent(client, explained, monkeypatch):
    """`k` when sent as the shorthand, `params.k` when inside params: the library says `k`."""
    run_id, _ = explained

    def refuse(*args, **kwargs):
        raise InvalidParameterError("k must be at least 1; got 0.", param="k")

    monkeypatch.setattr(api, "check_request", refuse)
    shorthand = {"run_id": run_id, "method": "xprompt", "k": 0}
    inside = {"run_id": run_id, "method": "xprompt", "params": {"k": 0}}
    unsent = {"run_id": run_id, "method": "xprompt"}
    for path in ("/api/explain", "/api/estimate"):
        assert answer(client.post(path, json=shorthand), 400) == (
            "k must be at least 1; got 0.",
            "k",
        )
        assert answer(client.post(path, json=inside), 400)[1] == "params.k"
        assert answer(client.post(path, json=unsent), 400)[1] == "params.k"


def test_a_query_parameter_is_named_when_the_library_names_it(client, explained, monkeypatch):
    eid = explained[1]["explanation_id"]

    def refuse(self, granularity, pattern=None):
        raise UnknownGranularityError(f"Unknown granularity {granularity!r}.", param="granularity")

    monkeypatch.setattr(Attribution, "aggregate", refuse)
    response = client.get(f"/api/explanations/{eid}", params={"granularity": "chapter"})
    assert answer(response, 400) == ("Unknown granularity 'chapter'.", "granularity")


def test_an_error_without_a_parameter_names_no_field(client):
    assert answer(client.post("/api/explain", json={"run_id": "nope"}), 404)[0].startswith("No run")
    missing = client.post("/api/generate", json={})
    assert answer(missing, 400)[1] is None


def test_locations_read_as_the_page_names_fields():
    assert field_name(("body", "params", "k")) == "params.k"
    assert field_name(("body", "span", 0)) == "span[0]"
    assert field_name(("query", "gamma")) == "gamma"
    unknown = {"type": "some_new_type", "loc": ("body", "x"), "msg": "Input is odd"}
    assert validation_line(unknown) == ("x", "x: input is odd")
    valued = {"type": "value_error", "loc": ("body", "y"), "msg": "Value error, JSON only"}
    assert validation_line(valued) == ("y", "y: JSON only")
