"""Contrastive targets: every method attributes log p(A) - log p(B) from one context."""

import pytest
from typer.testing import CliRunner

from promptxray import api, attribute, build_problem, explain
from promptxray.cli import app
from promptxray.errors import EmptyTargetError

PROMPT = "Answer in one word. The sky on a clear day is what color?"
A, B = " Blue sky", " Red"
SCORED = ["grad_norm", "grad_x_input", "integrated_gradients", "leave_one_out"]


@pytest.fixture(scope="module")
def problems(tiny_lm):
    return {
        "ab": build_problem(tiny_lm, PROMPT, target=A, contrast=B),
        "ba": build_problem(tiny_lm, PROMPT, target=B, contrast=A),
        "aa": build_problem(tiny_lm, PROMPT, target=A, contrast=A),
        "a": build_problem(tiny_lm, PROMPT, target=A),
        "b": build_problem(tiny_lm, PROMPT, target=B),
    }


def _scores(lm, problem, method, **params):
    return attribute(lm, problem, method, "word", **params).scores


@pytest.mark.parametrize("method", SCORED)
def test_a_contrast_with_itself_scores_zero(tiny_lm, problems, method):
    scores = _scores(tiny_lm, problems["aa"], method)
    assert scores == pytest.approx([0.0] * len(scores), abs=1e-6)


def test_joint_search_finds_nothing_to_flip_against_itself(tiny_lm, problems):
    a = attribute(tiny_lm, problems["aa"], "xprompt", "word", k=2)
    assert a.metadata["log_prob_drop"] == pytest.approx(0.0, abs=1e-5)
    assert a.scores == pytest.approx([0.0] * len(a.scores), abs=1e-5)  # batching noise
    assert (
        "every score is zero"
        in explain(PROMPT, model=tiny_lm, target=A, contrast=A, method="grad_x_input").metadata[
            "contrast"
        ]["note"]
    )


@pytest.mark.parametrize("method", ["grad_x_input", "integrated_gradients", "leave_one_out"])
def test_linear_methods_give_the_difference_of_the_two_single_targets(tiny_lm, problems, method):
    both = _scores(tiny_lm, problems["ab"], method)
    a, b = _scores(tiny_lm, problems["a"], method), _scores(tiny_lm, problems["b"], method)
    assert both == pytest.approx([x - y for x, y in zip(a, b, strict=True)], abs=1e-5)


@pytest.mark.parametrize("method", ["grad_x_input", "integrated_gradients", "leave_one_out"])
def test_swapping_a_and_b_negates_signed_scores(tiny_lm, problems, method):
    ab, ba = _scores(tiny_lm, problems["ab"], method), _scores(tiny_lm, problems["ba"], method)
    assert ab == pytest.approx([-x for x in ba], abs=1e-5)
    assert max(abs(x) for x in ab) > 1e-4  # not zero by accident


def test_grad_norm_is_the_norm_of_the_difference_of_gradients(tiny_lm, problems):
    ab = _scores(tiny_lm, problems["ab"], "grad_norm")
    ba = _scores(tiny_lm, problems["ba"], "grad_norm")
    a = _scores(tiny_lm, problems["a"], "grad_norm")
    assert ab == pytest.approx(ba, abs=1e-6)  # unsigned: the same either way round
    assert ab != pytest.approx(a, abs=1e-4)  # and not A's own gradient


def test_heatmap_rows_are_target_tokens_then_contrast_tokens(tiny_lm, problems):
    p = problems["ab"]
    n_a, n_b = len(p.target_ids), len(p.contrast_ids)
    assert n_a != n_b  # A and B tokenise to different lengths
    for method in ("grad_x_input", "leave_one_out"):
        a = attribute(tiny_lm, p, method, "word", matrix=True)
        assert len(a.matrix) == n_a + n_b == len(a.row_tokens)
        assert a.row_tokens[n_a].startswith("vs")
        columns = [sum(col) for col in zip(*a.matrix, strict=True)]
        assert columns == pytest.approx(a.scores, abs=1e-5)
        grouped = a.matrix_rows("word")
        assert len(grouped.matrix) == n_a + n_b  # contrast rows stay tokens


def test_the_result_records_both_texts_and_their_log_probs(tiny_lm):
    a = explain(PROMPT, model=tiny_lm, target=A, contrast=B, method="leave_one_out")
    report = a.metadata["contrast"]
    assert (report["target"], report["contrast"], a.contrast) == (A, B, B)
    full = report["full"]
    assert full["difference"] == pytest.approx(full["log_prob_target"] - full["log_prob_contrast"])
    # leave-one-out's unmasked quantity is the same number
    assert full["difference"] == pytest.approx(a.metadata["baseline_log_prob"], abs=1e-4)
    assert len(report["masked_units"]) == 3 and report["masked"]["difference"] != full["difference"]
    again = type(a).from_dict(a.to_dict())
    assert again.contrast == B and again.row_tokens == a.row_tokens


@pytest.mark.parametrize(
    ("method", "params", "matrix"),
    [
        ("grad_x_input", {}, True),
        ("grad_norm", {}, False),
        ("integrated_gradients", {"steps": 3}, True),
        ("leave_one_out", {}, False),
        ("xprompt_paper", {"k": 2, "iterations": 3}, False),
    ],
)
def test_predicted_passes_equal_counted_with_a_contrast(tiny_lm, problems, method, params, matrix):
    p = problems["ab"]
    request = api.check_request(method, "word", params=params)
    cost = request.spec.predict(tiny_lm, p, request.units(p), request.params, matrix)
    meta = api.run(tiny_lm, p, request, matrix=matrix).metadata
    counted = (meta["forward_passes"], meta["forward_calls"], meta["backward_passes"])
    assert (cost.forward_sequences, cost.forward_calls, cost.backward_calls) == counted


def test_xprompt_stays_within_its_bound_with_a_contrast(tiny_lm, problems):
    p = problems["ab"]
    request = api.check_request("xprompt", "word", params={"k": 2})
    cost = request.spec.predict(tiny_lm, p, request.units(p), request.params, False)
    meta = api.run(tiny_lm, p, request).metadata
    counted = (meta["forward_passes"], meta["forward_calls"], meta["backward_passes"])
    predicted = (cost.forward_sequences, cost.forward_calls, cost.backward_calls)
    assert all(c <= q for c, q in zip(counted, predicted, strict=True)), (counted, predicted)


def test_a_contrast_against_the_generation(tiny_lm):
    a = explain(PROMPT, model=tiny_lm, contrast=B, method="grad_x_input", max_new_tokens=4)
    assert a.metadata["output_source"] == "generated"
    assert a.metadata["contrast"]["target"] == a.output


def test_empty_contrasts_are_refused(tiny_lm):
    with pytest.raises(EmptyTargetError, match="contrast"):
        explain(PROMPT, model=tiny_lm, target=A, contrast="")
    with pytest.raises(EmptyTargetError, match="empty after tokenisation"):
        build_problem(tiny_lm, PROMPT, target=A, contrast="")


def test_cli_contrast_and_its_errors(tiny_lm, monkeypatch, tmp_path):
    monkeypatch.setattr("promptxray.cli.common.load_lm", lambda *a, **k: tiny_lm)
    runner = CliRunner()
    out = tmp_path / "r.json"
    done = runner.invoke(
        app, ["explain", PROMPT, "--target", A, "--contrast", B, "--json", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert '"contrast": " Red"' in out.read_text()
    bad = runner.invoke(app, ["explain", PROMPT, "--target", A, "--contrast", ""])
    assert bad.exit_code == 2 and "contrast" in bad.output.lower()
