"""Hierarchical leave-one-out: coarse units first, exact inside the strongest ones."""

from __future__ import annotations

import pytest

from promptxray import attribute
from promptxray.methods import get_method


def test_refining_everything_is_exact_leave_one_out(tiny_lm, story_problem):
    exact = attribute(tiny_lm, story_problem, "leave_one_out", "word")
    full = attribute(
        tiny_lm, story_problem, "leave_one_out", "word", coarse="sentence", refine=1000
    )
    assert full.scores == pytest.approx(exact.scores, abs=1e-5)
    assert full.metadata["refined"] == list(range(len(exact.units)))
    flat = [v for row in full.matrix for v in row]
    assert flat == pytest.approx([v for row in exact.matrix for v in row], abs=1e-5)


def test_unrefined_units_share_their_coarse_score(tiny_lm, story_problem):
    coarse = attribute(tiny_lm, story_problem, "leave_one_out", "sentence")
    none = attribute(tiny_lm, story_problem, "leave_one_out", "word", coarse="sentence", refine=0)
    hierarchy = none.metadata["hierarchy"]
    assert hierarchy["coarse_units"] == len(coarse.units) == 4
    assert hierarchy["coarse_scores"] == pytest.approx(coarse.scores, abs=1e-5)
    assert none.metadata["refined"] == []
    # each sentence's words inherit equal shares that add up to its score
    by_sentence = [0.0] * 4
    sentence_of = [0] * len(none.units)
    cursor = 0
    for i, unit in enumerate(none.units):
        while not (coarse.units[cursor].span[0] <= unit.span[0] < coarse.units[cursor].span[1]):
            cursor += 1
        sentence_of[i] = cursor
        by_sentence[cursor] += none.scores[i]
    assert by_sentence == pytest.approx(coarse.scores, abs=1e-5)
    # the full context, one variant per sentence, and the shared-prefix pass
    assert none.metadata["forward_passes"] == 1 + 4 + 1


def test_the_strongest_coarse_units_are_refined_exactly(tiny_lm, story_problem):
    exact = attribute(tiny_lm, story_problem, "leave_one_out", "word")
    two = attribute(tiny_lm, story_problem, "leave_one_out", "word", coarse="sentence", refine=2)
    strongest = sorted(range(4), key=lambda c: -abs(two.metadata["hierarchy"]["coarse_scores"][c]))[
        :2
    ]
    refined = two.metadata["refined"]
    assert refined and len(refined) < len(exact.units)
    for i in refined:
        assert two.scores[i] == pytest.approx(exact.scores[i], abs=1e-5)
    assert two.metadata["variants_scored"] == 1 + 4 + len(refined)
    assert two.metadata["hierarchy"]["coarse_refined"] == len(strongest)


def test_stored_results_keep_their_key_until_hierarchy_is_asked_for():
    spec = get_method("leave_one_out")
    assert spec.result_key(spec.resolve({})) == {"masking": "delete", "batch_size": 16}
    key = spec.result_key(spec.resolve({"coarse": "sentence"}))
    assert key["coarse"] == "sentence" and key["refine"] == 6


def test_views_mark_the_units_that_were_not_refined(tiny_lm, story_problem):
    from rich.console import Console

    from promptxray.render.console import render_console
    from promptxray.render.html import render_html

    one = attribute(tiny_lm, story_problem, "leave_one_out", "word", coarse="sentence", refine=1)
    refined = set(one.metadata["refined"])
    assert one.inherited == set(range(len(one.units))) - refined and refined
    exact = attribute(tiny_lm, story_problem, "leave_one_out", "word")
    assert exact.inherited == set()
    console = Console(width=200, record=True)
    console.print(render_console(one, top=len(one.units)))
    text = console.export_text()
    assert text.count("≈") == len(one.inherited) + 1  # each inherited score, and the note
    assert "1 of 4 sentences refined" in text
    html = render_html(one, top=len(one.units))
    assert html.count("≈ inherited, not refined") == len(one.inherited)
    assert "≈" not in render_html(exact, top=len(exact.units))
