"""context_cite: the Lasso surrogate recovers a known linear model, its LDS is out-of-fold,
its kept ablations answer another span exactly as a fresh run would, and bad input is one
line naming its parameter."""

from __future__ import annotations

import html
import json

import numpy as np
import pytest
import torch
from cli_helpers import assert_user_error
from samples import PROMPT, RESPONSE
from scipy.stats import spearmanr
from sklearn.linear_model import Lasso
from typer.testing import CliRunner

from promptxray import api, build_problem
from promptxray.check import plan_check
from promptxray.cli import app
from promptxray.errors import PromptXrayError
from promptxray.evaluation import EvalConfig, run_evaluation
from promptxray.masking import mask_context
from promptxray.methods import context_cite as cc
from promptxray.methods import quantity, surrogate
from promptxray.record import RunRecord

SPAN = (4, 10)  # "sky is" in RESPONSE: the tokens " sky", " is"


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, target=RESPONSE)


@pytest.fixture(scope="module")
def cited(tiny_lm, problem):
    return api.attribute(
        tiny_lm, problem, "context_cite", params={"ablations": 16}, matrix=True, check=False
    )


# ----- the fit ------------------------------------------------------------------------------


def test_the_surrogate_recovers_the_weights_of_a_linear_model(tiny_lm, problem, monkeypatch):
    """When the target's log-odds is exactly b + keep · w, the fitted weights are w."""
    units = problem.units("word")
    rng = np.random.default_rng(3)
    true = rng.normal(0, 1.5, len(units))
    true[::3] = 0.0  # some units do nothing
    bias = -1.0
    params = cc.ContextCiteParams(ablations=64, alpha=1e-6)
    keep = np.array(cc.keep_masks(len(units), cc.dropped_sets(problem, units, params)))

    def linear_rows(lm, prob, variants, batch_size, *, reference=None, progress=None):
        log_odds = bias + np.vstack([np.ones(len(units)), keep]) @ true
        rows = torch.zeros(len(variants), quantity.n_rows(prob), dtype=torch.float64)
        rows[:, 0] = torch.nn.functional.logsigmoid(torch.tensor(log_odds))  # log p
        return rows

    monkeypatch.setattr(quantity, "score_rows", linear_rows)
    attr = api.attribute(tiny_lm, problem, "context_cite", params=params, check=False)
    assert np.allclose(attr.scores, true, atol=1e-3), (attr.scores, true)  # stated tolerance
    assert attr.record.kept.intercept == pytest.approx(bias, abs=1e-3)
    assert attr.record.kept.lds > 0.999  # a linear model predicts unseen ablations


def test_log_odds_is_logit_p():
    p = np.array([1e-9, 0.2, 0.5, 0.999999])
    assert np.allclose(surrogate.log_odds(np.log(p)), np.log(p / (1 - p)), rtol=1e-9)
    assert np.isfinite(surrogate.log_odds(np.array([0.0]))).all()  # p = 1 stays finite


def _hand_lds(keep: np.ndarray, y: np.ndarray, alpha: float, tokens: int) -> float:
    """Four contiguous folds; each predicted by a Lasso on the others' standardised masks."""
    predicted = np.empty(len(y))
    for fold in np.array_split(np.arange(len(y)), 4):
        train = np.setdiff1d(np.arange(len(y)), fold)
        mean, std = keep[train].mean(0), keep[train].std(0)
        std[std == 0] = 1.0
        lasso = Lasso(alpha=alpha, max_iter=10_000).fit(
            (keep[train] - mean) / std, y[train] / tokens
        )
        predicted[fold] = lasso.predict((keep[fold] - mean) / std) * tokens
    return float(spearmanr(predicted, y).statistic)


def test_the_lds_is_spearman_of_out_of_fold_predictions():
    rng = np.random.default_rng(0)
    keep = (rng.random((12, 4)) < 0.5).astype(float)
    y = keep @ np.array([1.0, -0.5, 0.2, 0.0]) + rng.normal(0, 0.3, 12)
    assert surrogate.held_out_lds(keep, y, 0.01, 3) == pytest.approx(_hand_lds(keep, y, 0.01, 3))


def test_the_recorded_lds_is_measured_on_held_out_ablations(cited):
    kept = cited.record.kept
    lp = np.asarray(kept.log_probs).sum(1)
    y = lp - np.log1p(-np.exp(lp))
    hand = _hand_lds(np.asarray(kept.keep, float), y, kept.alpha, len(kept.token_spans))
    assert kept.lds == pytest.approx(hand, abs=1e-9)
    assert kept.folds == 4 and len(kept.keep) == 16 and kept.rows == [0, len(kept.token_spans)]


# ----- the ablations ----------------------------------------------------------------------------


def test_its_ablations_are_half_ablations_held_out_from_the_checks(tiny_lm, problem, cited):
    units = problem.units("word")
    dropped = cc.dropped_sets(problem, units, cc.ContextCiteParams(ablations=16))
    keep = np.array(cited.record.kept.keep)
    assert keep.tolist() == cc.keep_masks(len(units), dropped)
    assert all(0 < row.sum() < len(units) for row in keep)  # none empty or whole
    check = plan_check(tiny_lm, problem, units, list(range(len(units))), lds_ablations=16)
    assert check.ablations != dropped  # the check's LDS is measured on other ablations
    other = cc.dropped_sets(problem, units, cc.ContextCiteParams(ablations=16, seed=1))
    assert other != dropped


def test_kept_rows_are_the_scored_log_probs(tiny_lm, problem, cited):
    units = problem.units("word")
    kept = cited.record.kept
    first = [i for i, k in enumerate(kept.keep[0]) if not k]
    alone = tiny_lm.score_variants(
        [mask_context(tiny_lm, problem, units, first)], problem.target_ids
    )
    assert np.allclose(kept.log_probs[0], alone[0].tolist(), atol=1e-4)
    assert cited.record.masked.baseline_log_prob == pytest.approx(sum(kept.unmasked))


# ----- re-targeting -----------------------------------------------------------------------------


def test_a_retargeted_span_equals_a_fresh_run_on_that_span(tiny_lm, cited):
    again = api.retarget(cited, SPAN)
    span_problem = build_problem(tiny_lm, PROMPT, target=RESPONSE, span=SPAN)
    units = [u for u in span_problem.units("word") if u.role != "output"]
    assert [u.text for u in units] == [u.text for u in again.units]
    fresh = cc.context_cite(tiny_lm, span_problem, units, cc.ContextCiteParams(ablations=16))
    assert again.target == span_problem.target_text == " sky is"
    assert np.allclose(again.scores, fresh.scores, atol=1e-6)
    assert fresh.kept.keep == again.record.kept.keep
    assert again.record.kept.lds == pytest.approx(fresh.kept.lds, abs=1e-6)
    assert again.record.kept.rows == [1, 3] and again.record.kept.retargeted_from == [0, 30]
    assert again.record.cost.forward_passes == 0 and again.record.check is None


def test_a_retargeted_token_is_its_heatmap_row(cited):
    spans = cited.record.kept.token_spans
    for j in (0, 3):
        one = api.retarget(cited, tuple(spans[j]))
        assert one.target_tokens == [cited.target_tokens[j]]
        assert np.allclose(one.scores, cited.matrix[j], atol=1e-12)
        assert np.allclose(one.matrix[0], cited.matrix[j], atol=1e-12)


def test_a_retargeted_result_can_be_retargeted_and_saved(cited, tmp_path):
    first = api.retarget(cited, SPAN)
    back = api.retarget(first, (0, 30))
    assert np.allclose(back.scores, cited.scores, atol=1e-12)
    path = tmp_path / "r.json"
    path.write_text(first.to_json(), encoding="utf-8")
    assert api.Attribution.from_json(path.read_text(encoding="utf-8")) == first
    from_file, in_memory = api.retarget(path, (12, 16)), api.retarget(first, (12, 16))
    assert from_file.scores == in_memory.scores and from_file.record.kept == in_memory.record.kept


def test_the_record_round_trips_and_says_it_can_be_retargeted(cited):
    assert api.Attribution.from_json(cited.to_json()) == cited
    data = json.loads(cited.to_json())
    del data["record"]["kept"]  # a file written before the section
    assert api.Attribution.from_dict(data).record.kept is None
    assert RunRecord.from_dict({}).kept is None
    meta = cited.metadata["kept_ablations"]
    assert meta["retargetable"] and "without a forward pass" not in meta["note"]
    assert "no forward pass" in meta["note"] and meta["ablations"] == 16


# ----- the run: cost, progress, check, evaluation ------------------------------------------------


def test_predicted_passes_are_the_counted_ones(tiny_lm, problem):
    request = api.check_request("context_cite", params={"ablations": 10, "batch_size": 4})
    units = request.units(problem)
    cost = request.spec.predict(tiny_lm, problem, units, request.params)
    seen: list[tuple[int, int]] = []
    attr = api.run(tiny_lm, problem, request, progress=lambda d, t: seen.append((d, t)))
    assert cost.forward_sequences == attr.record.cost.forward_passes
    assert cost.forward_calls == attr.record.cost.forward_calls and not cost.upper_bound
    assert len(seen) >= 3 and seen[-1][0] == seen[-1][1]  # a report per batch of 4
    # The check reuses the unmasked prompt context_cite scored.
    assert attr.record.check.lds_ablations == 8 and attr.record.check.faithful is not None


def test_evaluation_rows_work_with_context_cite(tiny_lm, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"id": "a", "prompt": PROMPT}) + "\n", encoding="utf-8")
    config = EvalConfig(
        methods=["context_cite"], k=2, max_new_tokens=4, params={"ablations": 8}, use_sbert=False
    )
    result = run_evaluation(data, tmp_path / "run", config, lm=tiny_lm, show_progress=False)
    assert result.computed == 1 and not result.errors
    assert result.table.n == 1


# ----- bad input: one line naming the parameter --------------------------------------------------


@pytest.mark.parametrize(
    ("params", "param"),
    [({"ablation": 8}, "ablation"), ({"ablations": 7}, "ablations"), ({"alpha": 0}, "alpha"),
     ({"alpha": -1.0}, "alpha"), ({"masking": "blank"}, "masking")],
)  # fmt: skip
def test_bad_parameters_are_refused_by_name(params, param):
    with pytest.raises(PromptXrayError) as caught:
        api.check_request("context_cite", params=params)
    assert caught.value.param == param and "\n" not in str(caught.value)


def test_bad_spans_and_results_are_refused_by_name(tiny_lm, problem, cited):
    for span in ((0, 99), (5, 5), (-1, 3)):
        with pytest.raises(PromptXrayError) as caught:
            api.retarget(cited, span)
        assert caught.value.param == "span" and "\n" not in str(caught.value)
    other = api.attribute(tiny_lm, problem, "leave_one_out", check=False)
    with pytest.raises(PromptXrayError, match="kept no ablations") as caught:
        api.retarget(other, SPAN)
    assert caught.value.param == "result"
    contrast = build_problem(tiny_lm, PROMPT, target=RESPONSE, contrast=" Red.")
    versus = api.attribute(tiny_lm, contrast, "context_cite", params={"ablations": 8}, check=False)
    assert versus.record.kept.quantity == "contrast"
    with pytest.raises(PromptXrayError, match="contrast") as caught:
        api.retarget(versus, SPAN)
    assert caught.value.param == "result"
    one_unit = build_problem(tiny_lm, "Hello", target=" Hi.")
    with pytest.raises(PromptXrayError) as caught:
        api.attribute(tiny_lm, one_unit, "context_cite", check=False)
    assert caught.value.param == "granularity"


# ----- the command line and the web API -----------------------------------------------------------


def test_the_retarget_command_writes_the_new_result(cited, tmp_path):
    saved = tmp_path / "cited.json"
    saved.write_text(cited.to_json(), encoding="utf-8")
    out = tmp_path / "span.json"
    runner = CliRunner()
    result = runner.invoke(app, ["retarget", str(saved), "--span", "4:10", "--json", str(out)])
    assert result.exit_code == 0, result.output
    written = api.Attribution.from_json(out.read_text(encoding="utf-8"))
    assert written.scores == api.retarget(cited, SPAN).scores and written.target == " sky is"
    assert "sky" in result.stdout
    printed = " ".join(result.stdout.split())
    assert "on held-out ablations, 4-fold); any span of this output" in printed
    bad = runner.invoke(app, ["retarget", str(saved), "--span", "0:99"])
    assert_user_error(bad, "outside the target")
    missing = runner.invoke(app, ["retarget", str(tmp_path / "none.json"), "--span", "0:3"])
    assert_user_error(missing, "[RESULT]")


def test_the_retarget_route_answers_and_stores_a_new_explanation(client):
    from server_helpers import run_job

    run = run_job(client, "/api/generate", {"prompt": PROMPT, "response": RESPONSE})["result"]
    body = {"run_id": run["run_id"], "method": "context_cite", "params": {"ablations": 8}}
    first = run_job(client, "/api/explain", body)["result"]
    answer = client.post(
        "/api/retarget", json={"explanation_id": first["explanation_id"], "span": [4, 10]}
    )
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["target_span"] == [3, 10] and view["retargeted_from"] == first["explanation_id"]
    assert view["check_due"] and view["check"] is None and view["saved"]
    assert view["metadata"]["kept_ablations"]["rows"] == [1, 3]
    stored = client.get(f"/api/explanations/{view['explanation_id']}").json()
    assert stored["units"] == view["units"]
    bad = client.post(
        "/api/retarget", json={"explanation_id": first["explanation_id"], "span": [0, 99]}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "span"


def test_every_view_tells_the_surrogate_note(cited):
    """The console, the HTML view and the page's view carry the same held-out LDS line."""
    from promptxray.render import render_html
    from promptxray.server.views import explanation_view

    note = cited.notes.surrogate
    assert note and "held-out ablations" in note
    assert html.escape(note) in render_html(cited)
    view = explanation_view("e1", "r1", cited, {"method": "context_cite"}, check_due=False)
    assert view["surrogate"] == note
