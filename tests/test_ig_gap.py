"""Integrated gradients reports its completeness gap, and `tolerance` raises the steps."""

import pytest
import torch

from promptxray import attribute, build_problem
from promptxray.record import Completeness
from promptxray.render import render_html


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, "Name three red things, please.", target=" Apples and blood")


def _independent_ends(lm, problem):
    """log p(target | input) and | source embeddings zeroed), straight from the HF model."""
    ids = torch.tensor([problem.ids])
    emb = lm.model.get_input_embeddings()(ids).detach()[0]
    zeroed = emb.clone()
    zeroed[problem.source_positions] = 0.0
    out = []
    for inputs in (emb, zeroed):
        logp = torch.log_softmax(lm.model(inputs_embeds=inputs[None]).logits[0], -1)
        start = problem.target_start
        out.append(sum(float(logp[t - 1, problem.ids[t]]) for t in range(start, len(problem.ids))))
    return out


def _gap(lm, problem, **params):
    return attribute(lm, problem, "integrated_gradients", "token", **params).metadata[
        "completeness"
    ]


def test_gap_is_sum_of_source_scores_minus_the_independent_log_prob_difference(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "integrated_gradients", "token", steps=10)
    gap = attr.metadata["completeness"]
    full, baseline = _independent_ends(tiny_lm, problem)
    assert gap["log_prob_input"] == pytest.approx(full, abs=1e-4)
    assert gap["log_prob_baseline"] == pytest.approx(baseline, abs=1e-4)
    assert gap["attribution_sum"] == pytest.approx(sum(attr.scores), abs=1e-5)
    assert gap["gap"] == pytest.approx(sum(attr.scores) - (full - baseline), abs=1e-4)
    assert gap["relative_gap"] == pytest.approx(abs(gap["gap"]) / abs(full - baseline), rel=1e-3)
    assert gap["steps"] == 10 and gap["converged"] is None


def test_gap_shrinks_as_steps_grow(tiny_lm, problem):
    gaps = [abs(_gap(tiny_lm, problem, steps=n)["gap"]) for n in (1, 2, 4, 16)]
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < gaps[0] / 10


def test_tolerance_doubles_the_steps_until_the_gap_is_under_it(tiny_lm, problem):
    coarse = _gap(tiny_lm, problem, steps=1)
    tolerance = coarse["relative_gap"] / 20
    gap = _gap(tiny_lm, problem, steps=1, tolerance=tolerance, max_steps=256)
    assert gap["converged"] is True and gap["relative_gap"] <= tolerance
    tried = [steps for steps, _ in gap["steps_tried"]]
    assert tried == [2**i for i in range(len(tried))] and gap["steps"] == tried[-1] > 1
    # it stops at the second reading in a row under the tolerance, not at the first
    under = [relative <= tolerance for _, relative in gap["steps_tried"]]
    assert under[-2:] == [True, True] and not any(
        a and b for a, b in zip(under[:-2], under[1:-1], strict=True)
    )


def test_tolerance_reports_the_cap_when_it_is_not_met(tiny_lm, problem):
    gap = _gap(tiny_lm, problem, steps=1, tolerance=1e-9, max_steps=6)
    assert [steps for steps, _ in gap["steps_tried"]] == [1, 2, 4, 6]
    assert gap["steps"] == 6 and gap["converged"] is False
    assert "above the" in Completeness(**gap).note()


def test_tolerance_off_runs_exactly_the_steps_and_the_same_scores(tiny_lm, problem):
    plain = attribute(tiny_lm, problem, "integrated_gradients", "token", steps=8)
    again = attribute(tiny_lm, problem, "integrated_gradients", "token", steps=8, tolerance=0.0)
    assert plain.scores == again.scores
    assert plain.metadata["forward_passes"] == 8 + 2  # the steps, then input and baseline


def test_views_show_one_gap_line(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "integrated_gradients", "word", steps=20)
    note = attr.notes.completeness
    assert note.startswith("completeness gap ") and note.endswith("% (20 steps)")
    assert note in render_html(attr)
    from rich.console import Console

    from promptxray.render import render_console

    console = Console(record=True, width=120)
    console.print(render_console(attr))
    assert note in console.export_text()
    assert attribute(tiny_lm, problem, "grad_x_input").notes.completeness is None


def test_page_view_carries_the_gap_line(tiny_lm, problem):
    from promptxray.server.views import explanation_view

    attr = attribute(tiny_lm, problem, "integrated_gradients", "word", steps=4)
    view = explanation_view("e", "r", attr, {})
    assert view["completeness"] == attr.notes.completeness
    assert view["completeness"].endswith("(4 steps)")
