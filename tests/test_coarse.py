"""The one coarse pass: hierarchical leave-one-out and xprompt's pruning measure alike."""

from __future__ import annotations

import pytest

from promptxray import attribute
from promptxray.methods.coarse import coarse_pass, sizes, strongest


def test_hierarchical_leave_one_out_and_xprompt_get_the_same_coarse_scores(tiny_lm, story_problem):
    units = story_problem.units("word")
    found = coarse_pass(tiny_lm, story_problem, units, "sentence", "delete", 16, None)
    assert len(found.members) == 4
    loo = attribute(
        tiny_lm, story_problem, "leave_one_out", "word", coarse="sentence", refine=1, top=0
    )
    xp = attribute(tiny_lm, story_problem, "xprompt", "word", k=2, coarse="sentence", refine=1)
    # one routine, one run's numbers: equal, not merely close
    assert loo.metadata["hierarchy"]["coarse_scores"] == found.scores
    assert xp.metadata["hierarchy"]["coarse_scores"] == found.scores
    # both look into the same strongest sentence, and share the others' drops alike
    (top,) = found.strongest(1)
    assert len(found.members[top]) >= 2
    assert set(found.members[top]) <= set(loo.metadata["refined"])
    assert xp.metadata["refined"] == found.members[top]
    for c, group in enumerate(found.members):
        if c != top:
            share = found.scores[c] / len(group)
            assert [xp.scores[i] for i in group] == [share] * len(group)
            assert [loo.scores[i] for i in group] == pytest.approx([share] * len(group), abs=1e-6)


def test_strongest_takes_refine_by_magnitude_then_enough_units():
    members = [[0, 1], [2], [3, 4, 5], [6, 7]]
    strength = [1.0, 3.0, 2.0, 2.0]
    assert strongest(members, strength, 1) == [1]
    assert strongest(members, strength, 2) == [1, 2]  # ties: the earlier coarse unit
    assert strongest(members, strength, 1, at_least=3) == [1, 2]  # 1 unit, then 3 more
    assert strongest(members, strength, 0) == []
    assert strongest(members, strength, 0, at_least=2) == [1, 2]
    # the cost bounds rank by size: the largest coarse units first
    assert strongest(members, sizes(members), 2) == [2, 0]


def test_the_spread_bounds_the_score_and_is_the_rows_in_magnitude(tiny_lm, story_problem):
    units = story_problem.units("word")
    found = coarse_pass(tiny_lm, story_problem, units, "sentence", "delete", 16, None)
    by_hand = [sum(abs(v) for v in row) for row in found.drop.tolist()]
    assert found.spread == pytest.approx(by_hand, rel=1e-6)
    assert all(s >= abs(c) - 1e-6 for s, c in zip(found.spread, found.scores, strict=True))
    assert any(s > abs(c) + 1e-6 for s, c in zip(found.spread, found.scores, strict=True))


def test_xprompt_pruning_keeps_its_rule_and_records_no_adaptive_fields(tiny_lm, story_problem):
    xp = attribute(tiny_lm, story_problem, "xprompt", "word", k=2, coarse="sentence", refine=1)
    hierarchy = xp.record.hierarchy
    assert hierarchy.coarse_status is None and hierarchy.top is None
    assert hierarchy.note().endswith(
        f"(1 of 4 sentences refined, {len(hierarchy.refined)} units scored exactly)"
    )
