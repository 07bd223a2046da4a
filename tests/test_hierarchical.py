"""Hierarchical leave-one-out: coarse units first, exact inside those that could matter.

The refinement rule is checked on made-up drops (a fake scorer whose exact per-unit
drops are known), then on the tiny model against exact leave-one-out."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from promptxray import attribute
from promptxray.methods import get_method
from promptxray.methods.coarse import coarse_members, coarse_pass
from promptxray.methods.refinement import (
    BELOW_BOUND,
    BUDGET,
    NOT_STRONGEST,
    REFINED,
    SINGLE,
    kth_strongest,
    refine,
)
from promptxray.record import RunRecord


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
    none = attribute(
        tiny_lm, story_problem, "leave_one_out", "word", coarse="sentence", refine=0, top=0
    )
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
    two = attribute(
        tiny_lm, story_problem, "leave_one_out", "word", coarse="sentence", refine=2, top=0
    )
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
    assert key["coarse"] == "sentence" and key["refine"] == 0 and key["top"] == 5


def test_views_mark_the_units_that_were_not_refined(tiny_lm, story_problem):
    from rich.console import Console

    from promptxray.render.console import render_console
    from promptxray.render.html import render_html

    one = attribute(
        tiny_lm, story_problem, "leave_one_out", "word", coarse="sentence", refine=1, top=0
    )
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


# --- the adaptive rule on made-up drops -------------------------------------------------

# Four coarse units. Exact per-unit drops are known; the coarse scores are what masking the
# whole coarse unit gives. Unit 1's coarse score is modest (0.8) but holds a unit of 0.75.
MEMBERS = [[0, 1, 2], [3, 4], [5, 6], [7]]
WORD_DROPS = [1.0, 0.5, 0.2, 0.75, 0.01, 0.1, -0.1, 0.05]
COARSE = [3.0, 0.8, 0.3, 0.05]


class FakeScorer:
    """Per-unit drops of one target row, and every scoring run it was asked for."""

    def __init__(self, drops: list[float]) -> None:
        self.drops = drops
        self.runs: list[list[int]] = []

    def __call__(self, units: list[int]) -> torch.Tensor:
        self.runs.append(list(units))
        return torch.tensor([[self.drops[i]] for i in units])


def _refine(scorer, slack=1.0, **given):
    settings = {
        "minimum": [0],
        "top": 2,
        "budget": 100,
        "spent": 1 + len(MEMBERS),
        "batch_size": 1,
        "n_rows": 1,
        **given,
    }
    # one target row: a coarse unit's drops summed in magnitude are its |score|
    return refine(MEMBERS, COARSE, [slack * abs(c) for c in COARSE], scorer, **settings)


def _exact_scores(done) -> dict[int, float]:
    return dict(zip(done.units, done.drops.sum(1).tolist(), strict=True))


def test_a_strong_unit_in_a_modest_coarse_unit_is_found():
    scorer = FakeScorer(WORD_DROPS)
    done = _refine(scorer)
    # unit 0 first (the minimum); the 2nd strongest exact |score| is then 0.5 < 0.8, so
    # coarse unit 1 is refined and its 0.75 found; then 0.75 >= 0.3: unit 2 is skipped
    assert done.order == [0, 1]
    assert done.status == [REFINED, REFINED, BELOW_BOUND, SINGLE]
    assert done.threshold == pytest.approx(0.75)
    assert _exact_scores(done)[3] == pytest.approx(0.75)
    assert scorer.runs == [[0, 1, 2], [3, 4]] and done.rounds == 2
    # the fixed rule (top 0) with the same minimum misses it
    fixed = _refine(FakeScorer(WORD_DROPS), top=0)
    assert fixed.order == [0] and 3 not in fixed.units
    assert fixed.status == [REFINED, NOT_STRONGEST, NOT_STRONGEST, SINGLE]


def test_skipped_units_satisfy_their_recorded_reason():
    for top in (1, 2, 3, 5):
        done = _refine(FakeScorer(WORD_DROPS), minimum=[], top=top, budget=8)
        exact = [abs(v) for v in _exact_scores(done).values()] + [abs(COARSE[3])]
        kth = sorted(exact, reverse=True)[top - 1] if len(exact) >= top else None
        assert done.threshold == (pytest.approx(kth) if kth is not None else None)
        spent = 1 + len(MEMBERS) + len(done.units)
        for c, status in enumerate(done.status):
            if status == BELOW_BOUND:
                assert done.bounds[c] <= done.threshold
            elif status == BUDGET:
                assert done.threshold is None or done.bounds[c] > done.threshold
                assert spent + len(MEMBERS[c]) > 8
        # under the bound no skipped coarse unit could hold a unit above the k-th score
        for c, status in enumerate(done.status):
            if status == BELOW_BOUND:
                assert all(abs(WORD_DROPS[i]) <= done.threshold for i in MEMBERS[c])


def test_passes_are_coarse_units_plus_refined_units_and_the_budget_holds_exactly():
    # coarse pass: 1 unmasked + 4 masked = 5; units 0 (3) and 1 (2) would bring it to 10
    for budget, refined in ((8, [0, 1, 2]), (9, [0, 1, 2]), (10, [0, 1, 2, 3, 4])):
        scorer = FakeScorer(WORD_DROPS)
        done = _refine(scorer, minimum=[], budget=budget)
        scored = [i for run in scorer.runs for i in run]
        assert sorted(scored) == refined == sorted(done.units)
        assert 5 + len(scored) <= budget
    spent = _refine(FakeScorer(WORD_DROPS), minimum=[], budget=9)
    assert spent.status[1] == BUDGET and spent.threshold == pytest.approx(0.5)
    # nothing fits: the first coarse unit alone is over the budget
    none = _refine(FakeScorer(WORD_DROPS), minimum=[], budget=7)
    assert none.units == [] and none.status[:3] == [BUDGET] * 3 and none.threshold is None
    # the minimum is refined whatever the budget says
    forced = _refine(FakeScorer(WORD_DROPS), minimum=[0, 2], budget=5)
    assert sorted(forced.units) == [0, 1, 2, 5, 6] and forced.status[1] == BUDGET


def test_rounds_fill_a_batch_before_looking_again():
    scorer = FakeScorer(WORD_DROPS)
    done = _refine(scorer, minimum=[], top=8, batch_size=4)
    # the k-th score is -inf while fewer than 8 units are exact: everything is refined,
    # units 0 and 1 (5 >= 4 units) in the first run, unit 2 in the second
    assert scorer.runs == [[0, 1, 2, 3, 4], [5, 6]]
    assert done.status == [REFINED, REFINED, REFINED, SINGLE]
    assert done.threshold == pytest.approx(0.01)  # all 8 exact now: the 8th is the weakest


@pytest.mark.parametrize("slack", [1e6, 1e3])
def test_a_loose_enough_bound_is_exact_leave_one_out(slack):
    done = _refine(FakeScorer(WORD_DROPS), minimum=[], slack=slack)
    exact = _exact_scores(done)
    assert sorted(exact) == [0, 1, 2, 3, 4, 5, 6]
    assert [exact[i] for i in range(7)] == pytest.approx(WORD_DROPS[:7])
    tight = _refine(FakeScorer(WORD_DROPS), minimum=[], slack=0.0)
    # a bound of 0: refined only until the top k is full (any unit may enter it before)
    assert tight.units == [0, 1, 2] and tight.status[1:3] == [BELOW_BOUND] * 2
    assert kth_strongest([3.0, 1.0, 2.0], 2) == 2.0 and kth_strongest([1.0], 2) == -math.inf


# --- on the tiny model --------------------------------------------------------------------


def test_adaptive_with_a_loose_bound_equals_exact_leave_one_out(tiny_lm, story_problem):
    exact = attribute(tiny_lm, story_problem, "leave_one_out", "word")
    loose = attribute(
        tiny_lm,
        story_problem,
        "leave_one_out",
        "word",
        coarse="sentence",
        refine=0,
        slack=1e6,
        budget=2.0,
    )
    assert loose.scores == pytest.approx(exact.scores, abs=1e-5)
    assert loose.metadata["refined"] == list(range(len(exact.units)))
    flat = [v for row in loose.matrix for v in row]
    assert flat == pytest.approx([v for row in exact.matrix for v in row], abs=1e-5)
    assert loose.metadata["hierarchy"]["coarse_status"] == [REFINED] * 4


@pytest.mark.parametrize(
    ("top", "batch_size", "slack"), [(1, 16, 1.0), (5, 2, 1.0), (1, 1, 0.3), (3, 1, 0.3)]
)
def test_the_record_says_what_was_refined_and_why_the_rest_was_skipped(
    tiny_lm, story_problem, top, batch_size, slack
):
    exact = attribute(tiny_lm, story_problem, "leave_one_out", "word", batch_size=batch_size)
    hier = attribute(
        tiny_lm,
        story_problem,
        "leave_one_out",
        "word",
        coarse="sentence",
        refine=0,
        top=top,
        slack=slack,
        budget=2.0,
        batch_size=batch_size,
    )
    meta = hier.metadata
    h = meta["hierarchy"]
    members = coarse_members(story_problem, hier.units, "sentence")
    spread = coarse_pass(tiny_lm, story_problem, hier.units, "sentence", "delete", 16, None).spread
    refined = meta["refined"]
    assert sorted(h["coarse_order"]) == [
        c for c, s in enumerate(h["coarse_status"]) if s == REFINED
    ]
    assert refined == sorted(i for c in h["coarse_order"] for i in members[c])
    assert h["coarse_refined"] == len(h["coarse_order"]) and h["top"] == top
    # exactly: the unmasked prompt, every sentence, every unit of a refined sentence; and
    # one shared-prefix pass per scoring run (the coarse one and each round)
    assert meta["variants_scored"] == 1 + 4 + len(refined)
    assert meta["forward_passes"] == meta["variants_scored"] + 1 + h["rounds"]
    for i in refined:
        assert hier.scores[i] == pytest.approx(exact.scores[i], abs=1e-5)
    kth = sorted((abs(exact.scores[i]) for i in refined), reverse=True)[top - 1]
    assert h["threshold"] == pytest.approx(kth, abs=1e-5)
    for c, status in enumerate(h["coarse_status"]):
        assert status in (REFINED, BELOW_BOUND)  # budget 2.0: never spent
        if status == BELOW_BOUND:
            assert h["coarse_bounds"][c] == pytest.approx(slack * spread[c], abs=1e-5)
            assert spread[c] >= abs(h["coarse_scores"][c]) - 1e-6
            assert h["coarse_bounds"][c] <= h["threshold"]
    # on this model a slack of 0.3 skips sentences, 1.0 refines all of them
    assert (BELOW_BOUND in h["coarse_status"]) == (slack < 1)
    # the top k reported is exact's wherever the bound held
    held = all(
        abs(exact.scores[i]) <= h["coarse_bounds"][c]
        for c, group in enumerate(members)
        if h["coarse_status"][c] == BELOW_BOUND
        for i in group
    )
    if held:
        strongest = sorted(range(len(exact.units)), key=lambda i: -abs(exact.scores[i]))[:top]
        mine = sorted(range(len(hier.units)), key=lambda i: -abs(hier.scores[i]))[:top]
        assert [abs(exact.scores[i]) for i in mine] == pytest.approx(
            [abs(exact.scores[i]) for i in strongest], abs=1e-5
        )


def test_the_budget_caps_what_the_bound_would_refine(tiny_lm, story_problem):
    n = len(story_problem.units("word"))
    for share in (0.25, 0.5, 0.75):
        hier = attribute(
            tiny_lm,
            story_problem,
            "leave_one_out",
            "word",
            coarse="sentence",
            refine=0,
            top=n,  # a top k as large as the prompt: every unit could enter it
            budget=share,
        )
        h = hier.metadata["hierarchy"]
        assert h["budget"] == int(share * (n + 1))
        assert hier.metadata["variants_scored"] <= h["budget"]
        skipped = [s for s in h["coarse_status"] if s != REFINED]
        assert skipped and set(skipped) == {BUDGET}
        assert "budget of" in hier.notes.refinement


def test_the_note_counts_refined_and_skipped_coarse_units(tiny_lm, story_problem):
    one = attribute(
        tiny_lm,
        story_problem,
        "leave_one_out",
        "word",
        coarse="sentence",
        refine=0,
        top=1,
        slack=0.0,  # every bound 0: one sentence fills the top 1, the others are skipped
        budget=2.0,
        batch_size=1,
    )
    h = one.record.hierarchy
    below = h.coarse_status.count(BELOW_BOUND)
    assert below and h.threshold is not None
    note = h.note()
    assert f"{h.coarse_refined} of 4 sentences refined; {below} skipped" in note
    assert f"1st strongest exact |score| {h.threshold:.3g}" in note


def test_old_hierarchy_records_still_load():
    # format 3, written before the refinement was adaptive: no bound, status or budget
    old = {
        "coarse": "sentence",
        "coarse_units": 4,
        "coarse_refined": 1,
        "coarse_scores": [0.5, 0.1, 0.0, 0.2],
        "refined": [0, 1, 2],
        "coarse_passes": None,
    }
    record = RunRecord.from_dict({"hierarchy": old})
    assert record.hierarchy.coarse_status is None and record.hierarchy.top is None
    assert record.hierarchy.note().endswith("(1 of 4 sentences refined, 3 units scored exactly)")
    # format 2: the flat metadata, `refined` beside the hierarchy
    flat = {"hierarchy": {k: v for k, v in old.items() if k != "refined"}, "refined": [0, 1, 2]}
    assert RunRecord.from_flat(flat) == record
    # and a new record round-trips both ways
    new = replace(
        record.hierarchy,
        top=5,
        coarse_status=["refined", "bound", "bound", "budget"],
        threshold=0.25,
        budget=20,
        coarse_bounds=[0.5, 0.1, 0.0, 0.2],
    )
    again = RunRecord(hierarchy=new)
    assert RunRecord.from_dict(again.to_dict()) == again
    assert RunRecord.from_flat(again.flat()) == again
    assert "2 skipped: their bound is at most the 5th strongest exact |score| 0.25" in new.note()
    assert "1 skipped: budget of 20 scored prompts spent" in new.note()


@pytest.mark.parametrize(
    "params",
    [
        {"top": 24, "slack": 1e6, "budget": 2.0, "batch_size": 1},  # a run per sentence
        {"top": 3, "budget": 0.6, "batch_size": 2},
        {"refine": 2, "top": 5, "budget": 0.3},
    ],
)
def test_the_predicted_passes_bound_the_adaptive_runs(tiny_lm, story_problem, params):
    from promptxray import api

    request = api.check_request(
        "leave_one_out", "word", params={"coarse": "sentence", **params}, check=False
    )
    units = request.units(story_problem)
    cost = request.spec.predict(tiny_lm, story_problem, units, request.params, False)
    meta = api.run(tiny_lm, story_problem, request).metadata
    assert cost.upper_bound
    assert meta["forward_passes"] <= cost.forward_sequences
    assert meta["forward_calls"] <= cost.forward_calls


NEW_FIELDS = (
    "top",
    "slack",
    "budget",
    "threshold",
    "rounds",
    "coarse_order",
    "coarse_bounds",
    "coarse_status",
)


def test_saved_results_with_the_old_hierarchy_shape_load(tiny_lm, story_problem):
    from promptxray import Attribution

    attr = attribute(
        tiny_lm, story_problem, "leave_one_out", "word", coarse="sentence", refine=1, top=0
    )
    # format 3 as written before: the hierarchy section without the adaptive fields
    saved = json.loads(attr.to_json())
    for name in NEW_FIELDS:
        saved["record"]["hierarchy"].pop(name)
    old = Attribution.from_dict(saved)
    assert old.record.hierarchy.coarse_status is None
    assert old.record.hierarchy.refined == attr.record.hierarchy.refined
    assert old.inherited == attr.inherited and old.scores == attr.scores
    assert old.notes.refinement.endswith(
        f"(1 of 4 sentences refined, {len(attr.record.hierarchy.refined)} units scored exactly)"
    )
    # format 2: flat metadata, `refined` beside the hierarchy
    flat = {k: v for k, v in saved.items() if k != "record"}
    flat["format"] = 2
    flat["metadata"] = {k: v for k, v in attr.metadata.items()}
    flat["metadata"]["hierarchy"] = {
        k: v for k, v in flat["metadata"]["hierarchy"].items() if k not in NEW_FIELDS
    }
    older = Attribution.from_dict(json.loads(json.dumps(flat)))
    assert older.record.hierarchy == old.record.hierarchy
    assert older.inherited == attr.inherited
