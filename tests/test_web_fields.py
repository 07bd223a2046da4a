"""Every field of the web API reaches the code it is meant for (issue 27, item 1).

The request bodies and query parameters are enumerated from the app's own routes,
so a field added to a schema or a route has no case here and fails
`test_every_request_field_has_a_case` until one is written. Each case sends one
field at a non-default value and checks that value where it matters: in the
arguments of the library call it is meant for (the API entry points are wrapped
by spies that record and call through), or for the read-only query parameters in
the view the server answers with.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from samples import MESSAGES, RESPONSE
from samples import PROMPT as PROMPT_A
from server_helpers import LOCAL, make_wordy_lm, run_job

from promptxray import api
from promptxray.server import create_app

PROMPT_B = "Name a colour of the sea. Then one of the sky."
SPIED = (
    "prompt_for",
    "problem_for",
    "check_request",
    "run",
    "estimate",
    "ablate",
    "check_result",
    "retarget",
)


@dataclass
class World:
    """A served app with two runs and an explanation of each, made once for the module."""

    client: TestClient
    lm: Any
    run_a: str
    run_b: str
    explanation_a: str
    explanation_b: str


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    lm = make_wordy_lm()
    app = create_app(lm, tmp_path_factory.mktemp("history"))
    with TestClient(app, base_url=LOCAL) as client:
        runs = []
        for prompt in (PROMPT_A, PROMPT_B):
            body = {"prompt": prompt, "response": RESPONSE}
            runs.append(run_job(client, "/api/generate", body)["result"]["run_id"])
        explained = [
            run_job(client, "/api/explain", {"run_id": r, "matrix": True})["result"] for r in runs
        ]
        yield World(client, lm, *runs, *(e["explanation_id"] for e in explained))


@pytest.fixture()
def calls(world, monkeypatch) -> list[tuple[str, dict[str, Any]]]:
    """Every call of the spied API functions (and the model's generate), by argument name."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(real)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen.append((name, dict(signature.bind(*args, **kwargs).arguments)))
            return real(*args, **kwargs)

        return wrapper

    for name in SPIED:
        monkeypatch.setattr(api, name, spy(name, getattr(api, name)))
    monkeypatch.setattr(world.lm, "generate", spy("generate", world.lm.generate))
    return seen


def arguments(calls: list[tuple[str, dict[str, Any]]], name: str) -> list[dict[str, Any]]:
    return [args for called, args in calls if called == name]


# ----- the cases: (route, field) -> a body or query with the field set, and where it lands ------
@dataclass(frozen=True)
class Case:
    """`send` builds the request from the world; `landed` finds the value where it belongs."""

    send: Callable[[World], dict[str, Any]]
    call: str
    landed: Callable[[dict[str, Any], World], bool]


def run_of(w: World) -> dict[str, Any]:
    return {"run_id": w.run_a}


def explanation(w: World) -> dict[str, Any]:
    return {"explanation_id": w.explanation_a}


def param(name: str, value: Any) -> Callable[[dict[str, Any], World], bool]:
    return lambda args, _: (args["params"] or {}).get(name) == value


def explain_cases(matrix_call: str) -> dict[str, Case]:
    """ExplainRequest's fields, for /api/explain (the heatmap reaches `run`) and
    /api/estimate (it reaches `estimate`)."""
    return {
        "run_id": Case(
            lambda w: {"run_id": w.run_b},
            "problem_for",
            lambda args, _: args.get("prompt") == PROMPT_B,
        ),
        "span": Case(
            lambda w: {**run_of(w), "span": [4, 11]},
            "problem_for",
            lambda args, _: tuple(args["span"]) == (4, 11),
        ),
        "method": Case(
            lambda w: {**run_of(w), "method": "grad_x_input"},
            "check_request",
            lambda args, _: args["method"] == "grad_x_input",
        ),
        "contrast": Case(
            lambda w: {**run_of(w), "contrast": " Red."},
            "problem_for",
            lambda args, _: args["contrast"] == " Red.",
        ),
        "granularity": Case(
            lambda w: {**run_of(w), "granularity": "sentence"},
            "check_request",
            lambda args, _: args["granularity"] == "sentence",
        ),
        "matrix": Case(
            lambda w: {**run_of(w), "matrix": True},
            matrix_call,
            lambda args, _: args["matrix"] is True,
        ),
        "params": Case(
            lambda w: {**run_of(w), "params": {"batch_size": 3}},
            "check_request",
            param("batch_size", 3),
        ),
        "k": Case(
            lambda w: {**run_of(w), "method": "xprompt", "k": 2},
            "check_request",
            param("k", 2),
        ),
        "iterations": Case(
            lambda w: {**run_of(w), "method": "xprompt_paper", "k": 1, "iterations": 4},
            "check_request",
            param("iterations", 4),
        ),
        "steps": Case(
            lambda w: {**run_of(w), "method": "integrated_gradients", "steps": 3},
            "check_request",
            param("steps", 3),
        ),
        "masking": Case(
            lambda w: {**run_of(w), "method": "leave_one_out", "masking": "replace"},
            "check_request",
            param("masking", "replace"),
        ),
        "check": Case(
            lambda w: {**run_of(w), "check": False},
            "check_request",
            lambda args, _: args["check"] is False,
        ),
        "check_k": Case(
            lambda w: {**run_of(w), "check_k": 2},
            "check_request",
            lambda args, _: args["check_k"] == 2,
        ),
    }


CITED: dict[str, str] = {}


def cited(w: World) -> str:
    """A context_cite explanation of run B (made once): what /api/retarget re-fits."""
    if "b" not in CITED:
        body = {"run_id": w.run_b, "method": "context_cite", "params": {"ablations": 8}}
        CITED["b"] = run_job(w.client, "/api/explain", body)["result"]["explanation_id"]
    return CITED["b"]


def sentence_texts(w: World) -> list[str]:
    view = w.client.get(f"/api/explanations/{w.explanation_a}", params={"granularity": "sentence"})
    return [u["text"] for u in view.json()["units"]]


def removal(w: World) -> list[int]:
    return w.client.get(f"/api/explanations/{w.explanation_a}").json()["removal"]


BODY_CASES: dict[tuple[str, str], Case] = {
    ("/api/generate", "prompt"): Case(
        lambda w: {"prompt": "Name a bird.", "max_new_tokens": 2},
        "prompt_for",
        lambda args, _: args["prompt"] == "Name a bird.",
    ),
    ("/api/generate", "system_prompt"): Case(
        lambda w: {"prompt": "Name a bird.", "system_prompt": "Be brief.", "max_new_tokens": 2},
        "prompt_for",
        lambda args, _: args["system_prompt"] == "Be brief.",
    ),
    ("/api/generate", "messages"): Case(
        lambda w: {"messages": MESSAGES, "max_new_tokens": 2},
        "prompt_for",
        lambda args, _: args["messages"] == MESSAGES,
    ),
    ("/api/generate", "response"): Case(
        lambda w: {"prompt": "Name a bird.", "response": " A wren."},
        "problem_for",
        lambda args, _: args["target"] == " A wren.",
    ),
    ("/api/generate", "max_new_tokens"): Case(
        lambda w: {"prompt": "Name a bird.", "max_new_tokens": 3},
        "generate",
        lambda args, _: args["max_new_tokens"] == 3,
    ),
    **{("/api/explain", name): case for name, case in explain_cases("run").items()},
    **{("/api/estimate", name): case for name, case in explain_cases("estimate").items()},
    # Each /api/check case asks a check no other case asks (a known one is not computed again).
    ("/api/check", "explanation_id"): Case(
        lambda w: {"explanation_id": w.explanation_b, "token": 0},
        "check_result",
        lambda args, _: args["problem"].encoding.prompt == PROMPT_B,
    ),
    ("/api/check", "granularity"): Case(
        lambda w: {**explanation(w), "granularity": "sentence"},
        "check_result",
        lambda args, w: [u.text for u in args["attribution"].units] == sentence_texts(w),
    ),
    ("/api/check", "token"): Case(
        lambda w: {**explanation(w), "token": 1},
        "check_result",
        lambda args, _: args["token"] == 1,
    ),
    ("/api/check", "k"): Case(
        lambda w: {**explanation(w), "token": 2, "k": 2},
        "check_result",
        lambda args, _: args["k"] == 2,
    ),
    ("/api/mask", "explanation_id"): Case(
        lambda w: {"explanation_id": w.explanation_b, "top_k": 1},
        "ablate",
        lambda args, _: args["problem"].encoding.prompt == PROMPT_B,
    ),
    ("/api/mask", "granularity"): Case(
        lambda w: {**explanation(w), "granularity": "sentence", "units": [0]},
        "ablate",
        lambda args, w: [u.text for u in args["units"]] == sentence_texts(w),
    ),
    ("/api/mask", "units"): Case(
        lambda w: {**explanation(w), "units": [1, 2]},
        "ablate",
        lambda args, _: sorted(args["chosen"]) == [1, 2],
    ),
    ("/api/mask", "top_k"): Case(
        lambda w: {**explanation(w), "top_k": 2},
        "ablate",
        lambda args, w: sorted(args["chosen"]) == sorted(removal(w)[:2]),
    ),
    ("/api/retarget", "explanation_id"): Case(
        lambda w: {"explanation_id": cited(w), "span": [4, 11]},
        "retarget",
        lambda args, _: (
            args["result"].method == "context_cite" and args["result"].prompt == PROMPT_B
        ),
    ),
    ("/api/retarget", "span"): Case(
        lambda w: {"explanation_id": cited(w), "span": [12, 18]},
        "retarget",
        lambda args, _: tuple(args["span"]) == (12, 18),
    ),
    ("/api/mask", "operator"): Case(
        lambda w: {**explanation(w), "units": [0], "operator": "zero"},
        "ablate",
        lambda args, _: args["operator"] == "zero",
    ),
}


# Query parameters of the read-only routes: no model call, so each is checked in the answer.
@dataclass(frozen=True)
class QueryCase:
    path: Callable[[World], str]
    query: dict[str, Any]
    landed: Callable[[Any, World], bool]


def view_path(w: World) -> str:
    return f"/api/explanations/{w.explanation_a}"


def compare_refs(w: World) -> dict[str, str]:
    return {"a": f"{w.run_a}:{w.explanation_a}", "b": f"{w.run_b}:{w.explanation_b}"}


QUERY_CASES: dict[tuple[str, str], QueryCase] = {
    ("/api/explanations/{explanation_id}", "granularity"): QueryCase(
        view_path, {"granularity": "sentence"}, lambda r, _: r.json()["granularity"] == "sentence"
    ),
    ("/api/explanations/{explanation_id}", "gamma"): QueryCase(
        view_path, {"gamma": 2.0}, lambda r, _: r.json()["palette"]["gamma"] == 2.0
    ),
    ("/api/explanations/{explanation_id}", "rows"): QueryCase(
        view_path, {"rows": "word"}, lambda r, _: r.json()["matrix_rows"]["by"] == "word"
    ),
    ("/api/explanations/{explanation_id}/export", "format"): QueryCase(
        lambda w: f"{view_path(w)}/export",
        {"format": "html"},
        lambda r, _: r.headers["content-type"].startswith("text/html"),
    ),
    ("/api/explanations/{explanation_id}/export", "granularity"): QueryCase(
        lambda w: f"{view_path(w)}/export",
        {"granularity": "sentence"},
        lambda r, _: api.Attribution.from_json(r.text).granularity == "sentence",
    ),
    ("/api/runs", "limit"): QueryCase(
        lambda w: "/api/runs", {"limit": 1}, lambda r, _: len(r.json()) == 1
    ),
    ("/api/compare", "a"): QueryCase(
        lambda w: "/api/compare",
        {},
        lambda r, w: r.json()["a"]["run"]["id"] == w.run_a,
    ),
    ("/api/compare", "b"): QueryCase(
        lambda w: "/api/compare",
        {},
        lambda r, w: r.json()["b"]["run"]["id"] == w.run_b,
    ),
    ("/api/compare", "granularity"): QueryCase(
        lambda w: "/api/compare",
        {"granularity": "sentence"},
        lambda r, _: r.json()["a"]["view"]["granularity"] == "sentence",
    ),
    ("/api/compare", "gamma"): QueryCase(
        lambda w: "/api/compare",
        {"gamma": 0.5},
        lambda r, _: r.json()["a"]["view"]["palette"]["gamma"] == 0.5,
    ),
}


def request_fields(app: Any) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(route, field) of every body field and every query parameter the app takes."""
    bodies, queries = set(), set()
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        if route.body_field is not None:
            model = route.body_field.field_info.annotation
            bodies |= {(route.path, name) for name in model.model_fields}
        queries |= {(route.path, q.name) for q in route.dependant.query_params}
    return bodies, queries


def test_every_request_field_has_a_case(world):
    bodies, queries = request_fields(world.client.app)
    assert bodies, "no route takes a body: the enumeration is broken"
    assert sorted(bodies - set(BODY_CASES)) == [], "body fields with no wiring case"
    assert sorted(queries - set(QUERY_CASES)) == [], "query parameters with no wiring case"
    assert sorted(set(BODY_CASES) - bodies) == [] and sorted(set(QUERY_CASES) - queries) == []


@pytest.mark.parametrize("route_field", sorted(BODY_CASES), ids="{0[0]}:{0[1]}".format)
def test_a_body_field_reaches_its_library_call(world, calls, route_field):
    path, field = route_field
    case = BODY_CASES[route_field]
    body = case.send(world)
    assert field in body
    response = world.client.post(path, json=body)
    assert response.status_code in (200, 202), response.text
    if response.status_code == 202:
        state = world.client.app.state.jobs.wait(response.json()["job_id"])
        assert state.status == "done", state.error
    made = arguments(calls, case.call)
    assert made, f"{path} {field}: {case.call} was never called"
    assert any(case.landed(args, world) for args in made), (path, field, made)


@pytest.mark.parametrize("route_field", sorted(QUERY_CASES), ids="{0[0]}:{0[1]}".format)
def test_a_query_parameter_reaches_the_answer(world, route_field):
    path, name = route_field
    case = QUERY_CASES[route_field]
    query = dict(case.query)
    if path == "/api/compare":
        query = {**compare_refs(world), **query}
    assert name in query
    response = world.client.get(case.path(world), params=query)
    assert response.status_code == 200, response.text
    assert case.landed(response, world), (path, name)
