"""The faithfulness check: its numbers against a hand computation, its verdicts, its edges."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient
from scipy.stats import spearmanr
from server_helpers import LOCAL, generate, run_job

from promptxray import Attribution, attribute, build_problem
from promptxray.check import check_explanation, plan_check, verdict
from promptxray.errors import InvalidParameterError
from promptxray.evaluation.metrics import FaithfulnessScorer
from promptxray.masking import keep_only, mask_context
from promptxray.server.app import create_app

PROMPT = "Write one short line about the quiet blue sea at night, please."


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, max_new_tokens=4)


def _log_p(lm, context, problem) -> float:
    """log p(target | context) by one plain forward: the independent computation."""
    return float(lm.score(list(context.ids) + problem.target_ids, len(context.ids)).sum())


def test_every_figure_equals_a_hand_computation(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "grad_x_input", "word")
    check = attr.record.check
    units, scores, ranking = attr.units, attr.scores, attr.ranking("support")
    plan = plan_check(tiny_lm, problem, units, ranking)
    n_target = len(problem.target_ids)
    full = _log_p(tiny_lm, mask_context(tiny_lm, problem, units, []), problem)

    def ratio(masked: list[int]) -> float:
        context = mask_context(tiny_lm, problem, units, masked)
        return math.exp((_log_p(tiny_lm, context, problem) - full) / n_target)

    top = ranking[:3]
    assert check.k == 3
    assert check.curve == pytest.approx([1.0] + [ratio(top[:j]) for j in (1, 2, 3)], rel=1e-3)
    assert check.deletion_ratio == pytest.approx(ratio(top), rel=1e-3)
    assert check.random_ratios == pytest.approx([ratio(s) for s in plan.random_sets], rel=1e-3)
    assert check.beats_random == sum(r > check.deletion_ratio for r in check.random_ratios)
    kept = keep_only(tiny_lm, problem, units, top)
    sufficiency = math.exp((_log_p(tiny_lm, kept, problem) - full) / n_target)
    assert check.sufficiency_ratio == pytest.approx(sufficiency, rel=1e-3)
    # LDS: Spearman(sum of the dropped units' scores, the drop in log p(target) they cause)
    drops = [
        full - _log_p(tiny_lm, mask_context(tiny_lm, problem, units, a), problem)
        for a in plan.ablations
    ]
    predicted = [sum(scores[i] for i in a) for a in plan.ablations]
    assert check.lds == pytest.approx(spearmanr(predicted, drops).statistic, abs=1e-9)
    assert check.lds_ablations == 8 and len(check.random_ratios) == 8


def test_every_method_of_a_prompt_is_judged_on_the_same_ablations(tiny_lm, problem):
    units = problem.units("word")
    one = plan_check(tiny_lm, problem, units, list(range(len(units))))
    other = plan_check(tiny_lm, problem, units, list(reversed(range(len(units)))))
    assert one.ablations == other.ablations and len(one.ablations) == 8
    assert all(0 < len(a) < len(units) for a in one.ablations)


def test_random_scores_are_not_called_faithful(tiny_lm, problem):
    for seed in range(4):
        check = attribute(tiny_lm, problem, "random", "word", seed=seed).record.check
        assert check.faithful is False, check.verdict


def test_a_method_that_follows_the_model_is_called_faithful(tiny_lm, problem):
    """Scores equal to each unit's own leave-one-out drop on a model whose drops add up
    are what the check rewards: here, leave-one-out itself on the tiny model."""
    check = attribute(tiny_lm, problem, "leave_one_out", "word").record.check
    assert check.beats_random is not None and check.lds is not None
    assert check.verdict.split(":")[0] in ("faithful", "partly faithful")


def test_the_verdict_reads_its_figures():
    assert verdict(3, "word", 0.21, 8, 8, 0.7).startswith(
        "faithful: removing its top 3 words lowers p(target) to 0.21× per token, more than "
        "every one of 8 random 3-word sets"
    )
    assert verdict(3, "word", 0.9, 2, 8, 0.1).startswith("no better than random")
    assert verdict(3, "word", 0.9, 1, 8, -0.7).startswith("contradicted")
    assert verdict(1, "sentence", 0.5, 7, 8, None).startswith(
        "partly faithful: removing its top 1 sentence lowers"
    )


def test_bad_input_is_a_clear_line_or_a_verdict_that_says_why(tiny_lm, problem):
    units = problem.units("word")
    with pytest.raises(InvalidParameterError, match="check_k") as raised:
        check_explanation(
            tiny_lm, problem, units, [0.0] * len(units), list(range(len(units))),
            granularity="word", k=len(units),
        )  # fmt: skip
    assert raised.value.param == "check_k"
    one = build_problem(tiny_lm, "Hello", target=" there")
    check = attribute(tiny_lm, one, "grad_norm", "word").record.check
    assert check.faithful is None and check.verdict.startswith("not checked: a prompt of one")
    short = build_problem(tiny_lm, "Red green", target=" blue")  # two units: k drops to 1
    assert attribute(tiny_lm, short, "grad_norm", "word").record.check.k == 1


def test_off_switch_regroup_and_older_files(tiny_lm, problem):
    assert attribute(tiny_lm, problem, "grad_norm", "word", check=False).record.check is None
    attr = attribute(tiny_lm, problem, "grad_norm", "word")
    assert attr.record.check is not None and attr.notes.check.startswith("check: ")
    assert attr.aggregate("sentence").record.check is None  # recomputed, never relabelled
    assert attr.aggregate("token").record.check is None  # back to the base units too
    assert attr.aggregate("word").record.check == attr.record.check  # the same units
    assert attr.aggregate("regex", r"\w+").record.check is None  # other units, same count
    again = Attribution.from_json(attr.to_json())
    assert again.record.check == attr.record.check
    saved = attr.to_dict()
    del saved["record"]["check"]  # a result saved before the check existed
    assert Attribution.from_dict(saved).record.check is None


def test_one_output_token_checked_against_its_own_probability(tiny_lm, problem):
    from promptxray.api import check_result

    attr = attribute(tiny_lm, problem, "grad_x_input", "word", matrix=True)
    row = check_result(tiny_lm, problem, attr, token=1)
    assert row.token == 1 and "p(output token 1)" in row.verdict
    units = attr.units
    ranking = sorted(range(len(units)), key=lambda i: -attr.matrix[1][i])
    top = ranking[:3]

    def token_log_p(masked: list[int]) -> float:
        context = mask_context(tiny_lm, problem, units, masked)
        return float(tiny_lm.score(list(context.ids) + problem.target_ids, len(context.ids))[1])

    expected = math.exp(token_log_p(top) - token_log_p([]))
    assert row.deletion_ratio == pytest.approx(expected, rel=1e-3)
    with pytest.raises(InvalidParameterError, match="heatmap row"):
        check_result(tiny_lm, problem, attr, token=99)


def test_the_page_mask_and_evaluate_measure_the_same_pr_and_kl(wordy_lm, tmp_path):
    """One mask-and-measure path: the page's mask endpoint and the evaluation's scorer
    give identical PR and KL for the same removed units."""
    with TestClient(create_app(wordy_lm, tmp_path), base_url=LOCAL) as client:
        run_id = generate(client, PROMPT, 6)["result"]["run_id"]
        view = run_job(
            client, "/api/explain", {"run_id": run_id, "method": "grad_norm", "granularity": "word"}
        )["result"]
        edit = run_job(client, "/api/mask", {"explanation_id": view["explanation_id"], "top_k": 3})[
            "result"
        ]
    problem = build_problem(wordy_lm, PROMPT, max_new_tokens=6)
    units = problem.units("word")
    scorer = FaithfulnessScorer(wordy_lm, problem, units, max_new_tokens=6, use_sbert=False)
    ranking = view["removal"]
    assert sorted(ranking[:3]) == edit["masked"]
    measured = scorer.score(ranking, 3)
    assert edit["pr"] == pytest.approx(measured.pr, rel=1e-9)
    assert edit["kl"] == pytest.approx(measured.kl, rel=1e-9)


def test_the_check_removes_units_as_asked(tiny_lm, problem):
    """By default as the method masked (delete for gradients); the evaluation passes its own
    operator so the check's deletion is the row's PR."""
    assert attribute(tiny_lm, problem, "grad_norm", "word").record.check.operator == "delete"
    zero = attribute(tiny_lm, problem, "grad_norm", "word", check_operator="zero").record.check
    assert zero.operator == "zero"
    replaced = attribute(tiny_lm, problem, "leave_one_out", "word", masking="replace")
    assert replaced.record.check.operator == "replace"
    with pytest.raises(InvalidParameterError, match="blur"):
        attribute(tiny_lm, problem, "grad_norm", "word", check_operator="blur")
