"""Every method predicts its passes before it runs, and the prediction is what runs."""

import threading

import pytest
from fastapi.testclient import TestClient
from server_helpers import LOCAL, generate, run_job

from promptxray import api, build_problem
from promptxray.methods.base import REGISTRY
from promptxray.methods.costs import Estimate
from promptxray.server import create_app

PROMPT = "Alice packed a red umbrella. Bob forgot his coat, so he got wet in the rain."
TARGET = " Alice stayed dry."

CASES = [
    ("grad_norm", "word", {}, False),
    ("grad_norm", "word", {"batch_size": 2}, True),
    ("grad_x_input", "sentence", {}, True),
    ("integrated_gradients", "word", {"steps": 7}, False),
    ("integrated_gradients", "word", {"steps": 5, "batch_size": 3}, True),
    ("leave_one_out", "word", {}, False),
    ("leave_one_out", "word", {"batch_size": 3, "masking": "zero"}, False),
    ("leave_one_out", "token", {"masking": "replace"}, False),
    ("random", "word", {}, False),
    ("xprompt_paper", "word", {"k": 2, "iterations": 6}, False),
    ("attnlrp", "word", {}, False),
    ("attnlrp", "word", {"batch_size": 2}, True),
    ("context_cite", "word", {"ablations": 9, "batch_size": 4}, True),
    ("context_cite", "sentence", {"masking": "replace"}, False),
]
BOUNDED = [
    ("xprompt", "word", {"k": 2}),
    ("xprompt", "word", {"k": 3, "budget": 12, "batch_size": 4}),
    ("xprompt", "sentence", {"k": 1, "strategy": "exhaustive"}),
    ("integrated_gradients", "word", {"steps": 2, "tolerance": 0.01, "max_steps": 16}),
]


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, target=TARGET)


def _predicted_and_counted(lm, problem, method, granularity, params, matrix=False):
    request = api.check_request(method, granularity, params=params)
    cost = request.spec.predict(lm, problem, request.units(problem), request.params, matrix)
    meta = api.run(lm, problem, request, matrix=matrix).metadata
    counted = (meta["forward_passes"], meta["forward_calls"], meta["backward_passes"])
    return (cost.forward_sequences, cost.forward_calls, cost.backward_calls), counted, cost


@pytest.mark.parametrize(("method", "granularity", "params", "matrix"), CASES)
def test_predicted_passes_equal_counted_passes(
    tiny_lm, problem, method, granularity, params, matrix
):
    predicted, counted, cost = _predicted_and_counted(
        tiny_lm, problem, method, granularity, params, matrix
    )
    assert predicted == counted
    assert not cost.upper_bound


@pytest.mark.parametrize(("method", "granularity", "params"), BOUNDED)
def test_searches_stay_within_their_predicted_bound(tiny_lm, problem, method, granularity, params):
    predicted, counted, cost = _predicted_and_counted(tiny_lm, problem, method, granularity, params)
    assert cost.upper_bound
    assert all(c <= p for c, p in zip(counted, predicted, strict=True)), (counted, predicted)


def test_every_registered_method_is_covered():
    covered = {case[0] for case in CASES} | {case[0] for case in BOUNDED}
    assert covered == set(REGISTRY)


def test_hierarchical_leave_one_out_is_bounded(tiny_lm, problem):
    from promptxray.methods.perturbation import LeaveOneOutParams

    if "coarse" not in LeaveOneOutParams.model_fields:
        pytest.skip("hierarchical leave-one-out is not in this checkout")
    for refine in (0, 1, 100):
        params = {"coarse": "sentence", "refine": refine}
        predicted, counted, cost = _predicted_and_counted(
            tiny_lm, problem, "leave_one_out", "word", params
        )
        assert cost.upper_bound
        assert all(c <= p for c, p in zip(counted, predicted, strict=True))
        if refine == 100:  # every sentence refined: the bound is met exactly
            assert counted == predicted


def test_estimate_gives_passes_and_seconds_from_one_measured_forward(tiny_lm, problem):
    before = tiny_lm.cost.snapshot()
    request = api.check_request("leave_one_out", "word", check=False)
    estimate = api.estimate(tiny_lm, problem, request)
    assert tiny_lm.cost.snapshot() == before  # measuring is not a method's cost
    assert isinstance(estimate, Estimate) and estimate.seconds > 0
    n_words = len(request.units(problem))
    assert estimate.cost.forward_sequences == n_words + 2  # variants, unmasked, shared prefix
    assert estimate.line().startswith(f"leave_one_out: about {n_words + 2} forward passes, ~")
    twice = api.estimate(tiny_lm, problem, request, per_token=2 * estimate.seconds_per_token)
    assert twice.seconds == pytest.approx(2 * estimate.seconds)


def test_bounds_say_so(tiny_lm, problem):
    estimate = api.estimate(tiny_lm, problem, api.check_request("xprompt", params={"k": 2}))
    assert "at most" in estimate.line() and "1 backward" in estimate.line()
    assert estimate.as_dict()["upper_bound"] is True


def test_cli_announces_long_jobs_only(tiny_lm, problem):
    from rich.console import Console

    from promptxray.cli.explain import announce_estimate

    request = api.check_request("leave_one_out", "word")
    console = Console(record=True, width=200)
    short = api.estimate(tiny_lm, problem, request, per_token=1e-6)
    announce_estimate(console, short)
    assert console.export_text() == ""
    long = api.estimate(tiny_lm, problem, request, per_token=1.0)
    announce_estimate(console, long)
    assert console.export_text().strip() == long.line()
    assert long.line().endswith(" min")


def test_page_asks_the_server_for_an_estimate_that_matches_the_run(tiny_lm, tmp_path):
    with TestClient(create_app(tiny_lm, tmp_path), base_url=LOCAL) as client:
        run_id = generate(client, "Red green blue yellow.", 4)["result"]["run_id"]
        body = {"run_id": run_id, "method": "leave_one_out", "granularity": "word"}
        answer = client.post("/api/estimate", json=body)
        assert answer.status_code == 200, answer.text
        estimate = answer.json()
        assert estimate["available"] and not estimate["confirm"]  # tiny model: quick
        result = run_job(client, "/api/explain", body)["result"]
        # the estimate counts the method and its faithfulness check; so does the result
        check = result["metadata"]["check"]
        counted = result["metadata"]["forward_passes"] + check["forward_passes"]
        assert estimate["forward_sequences"] == counted
        assert estimate["line"].startswith("leave_one_out: about ")
        split = f"({estimate['method_forward']} to explain, {estimate['check_forward']} to check)"
        assert split in estimate["line"] and estimate["check_forward"] == check["forward_passes"]
        refused = client.post("/api/estimate", json={**body, "params": {"k": 2}})
        assert refused.status_code == 400


def test_no_estimate_while_the_model_is_busy(tiny_lm, tmp_path):
    with TestClient(create_app(tiny_lm, tmp_path), base_url=LOCAL) as client:
        run_id = generate(client, "Red green blue yellow.", 4)["result"]["run_id"]
        held, release = threading.Event(), threading.Event()

        def hold():
            with tiny_lm.lock:
                held.set()
                release.wait(10)

        worker = threading.Thread(target=hold)
        worker.start()
        held.wait(10)
        try:
            body = {"run_id": run_id, "method": "grad_norm"}
            estimate = client.post("/api/estimate", json=body).json()
        finally:
            release.set()
            worker.join()
        assert estimate["available"] is False and estimate["confirm"] is False


@pytest.mark.parametrize("method", ["grad_norm", "leave_one_out", "xprompt", "xprompt_paper"])
def test_the_estimate_counts_the_check_exactly(tiny_lm, problem, method):
    params = {"k": 2} if method.startswith("xprompt") else {}
    request = api.check_request(method, "word", params=params)
    without = api.check_request(method, "word", params=params, check=False)
    check_passes = (
        api.estimate(tiny_lm, problem, request).cost.forward_sequences
        - api.estimate(tiny_lm, problem, without).cost.forward_sequences
    )
    check = api.run(tiny_lm, problem, request).record.check
    assert check is not None and check.forward_passes == check_passes
    # 20 masked variants and the shared prefix; the unmasked one only if the method
    # did not score it already
    assert check_passes == (22 if method == "grad_norm" else 21)
