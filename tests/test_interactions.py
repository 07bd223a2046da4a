"""Pairwise interactions of units: I(a, b) = drop({a, b}) − drop({a}) − drop({b}), measured
from the sets a joint search scored, recorded, shown, saved and read back."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import asdict, replace

import pytest
from interaction_helpers import FakeObjective, searched_objective
from rich.console import Console

from promptxray import Attribution, attribute, build_problem
from promptxray.methods.joint_interactions import (
    interactions_after_search,
    interactions_cost,
    measure_interactions,
    pair_interaction,
    plan_extra,
    strongest,
    top_candidates,
)
from promptxray.record import Interaction, Interactions, RunRecord
from promptxray.render import render_console, render_html
from promptxray.server.views import explanation_view
from promptxray.unit_pairs import nats

PROMPT = "The cat sat on the mat. It was warm there."
E = frozenset()


def s(*units: int) -> frozenset[int]:
    return frozenset(units)


# ----- the arithmetic ----------------------------------------------------------------------------
TABLE = {
    E: -1.0,
    s(0): -1.5,
    s(1): -1.2,
    s(2): -3.0,
    s(0, 1): -4.0,
    s(0, 2): -3.1,
    s(1, 2): -3.5,
}


def test_interaction_equals_the_hand_computation_from_known_L():
    objective = FakeObjective(lambda _: pytest.fail("nothing new may be scored"))
    objective.known.update(TABLE)
    found = measure_interactions(objective, [0, 1, 2], extra_passes=0)
    by_pair = {tuple(p.units): p for p in found.pairs}
    # drop(0) = 0.5, drop(1) = 0.2, drop(2) = 2.0; drop(01) = 3.0, drop(02) = 2.1, drop(12) = 2.5
    assert by_pair[(0, 1)].value == pytest.approx(3.0 - 0.5 - 0.2)  # +2.3
    assert by_pair[(0, 2)].value == pytest.approx(2.1 - 0.5 - 2.0)  # -0.4
    assert by_pair[(1, 2)].value == pytest.approx(2.5 - 0.2 - 2.0)  # +0.3
    assert by_pair[(0, 1)].drops == pytest.approx([0.5, 0.2])
    assert by_pair[(0, 1)].pair_drop == pytest.approx(3.0)
    assert found.pairs[0].units == [0, 1]  # the strongest first
    assert found.measured == 3 and found.from_scored == 3 and found.extra_passes == 0
    assert objective.spent == 0 and objective.calls == []


def test_drops_are_ordered_as_the_units_whatever_the_candidate_order():
    known = {E: 0.0, s(3): -1.0, s(7): -4.0, s(3, 7): -6.0}
    pair = pair_interaction(known, 7, 3)
    assert pair == Interaction([3, 7], 6.0, [1.0, 4.0], 1.0)
    assert pair_interaction({E: 0.0, s(3): -1.0}, 3, 7) is None


def test_strongest_keeps_each_signs_top_by_magnitude():
    values = [3.0, -0.5, 0.1, -2.0, 1.5, -4.0, 0.0, 2.5]
    found = [Interaction([i, i + 1], 0.0, [0.0, 0.0], v) for i, v in enumerate(values)]
    kept = strongest(found, keep=2)
    assert [p.value for p in kept] == [-4.0, 3.0, 2.5, -2.0]
    assert all(p.value != 0.0 for p in strongest(found, keep=10))


# ----- a real objective on the tiny model ---------------------------------------------------------
@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, max_new_tokens=3)


@pytest.fixture(scope="module")
def units(problem):
    return problem.units("word")


def test_on_a_model_the_values_equal_independent_scorings(tiny_lm, problem, units):
    objective = searched_objective(tiny_lm, problem, units)
    spent = objective.spent
    found = measure_interactions(objective, list(range(len(units))), extra_passes=0, keep=100)
    assert objective.spent == spent and found.extra_passes == 0
    # the search scored every single and the best single with every other unit
    assert found.measured == len(units) - 1 == found.from_scored
    # the drops are leave-one-out's scores, computed by that method on its own
    loo = attribute(tiny_lm, problem, "leave_one_out", "word", params={"masking": "delete"})
    fresh = searched_objective(tiny_lm, problem, units)  # scored again, not reused
    for pair in found.pairs:
        a, b = pair.units
        assert pair.drops == pytest.approx([loo.base_scores[a], loo.base_scores[b]], abs=1e-4)
        by_hand = (fresh.known[E] - fresh.known[s(a, b)] - (fresh.known[E] - fresh.known[s(a)])) - (
            fresh.known[E] - fresh.known[s(b)]
        )
        assert pair.value == pytest.approx(by_hand, abs=1e-4)


def test_extra_passes_never_exceed_the_allowance_and_leave_the_budget(tiny_lm, problem, units):
    candidates = list(range(len(units)))[:5]
    for allowance in (0, 1, 2, 3, 7, 40):
        objective = searched_objective(tiny_lm, problem, units, budget=1 + 2 * len(units))
        budget, spent, before = objective.budget, objective.spent, tiny_lm.cost.snapshot()
        pairs = list(itertools.combinations(candidates, 2))
        known_pairs = sum(s(a, b) in objective.known for a, b in pairs)
        found = measure_interactions(objective, candidates, extra_passes=allowance)
        new = objective.spent - spent
        assert new == found.extra_passes <= allowance
        assert objective.budget == budget  # the search's budget is not the interactions'
        assert tiny_lm.cost.snapshot()["forward_sequences"] - before["forward_sequences"] >= new
        # with the singles known, each pass completes one pair
        assert new == min(allowance, len(pairs) - known_pairs)
        assert found.measured == known_pairs + new
    # the cost bound covers what the passes did
    objective = searched_objective(tiny_lm, problem, units)
    before = tiny_lm.cost.snapshot()["forward_sequences"]
    interactions_after_search(objective, [0, 1], [0.0] * len(units), extra_passes=6)
    made = tiny_lm.cost.snapshot()["forward_sequences"] - before
    bound = interactions_cost(tiny_lm, problem, units, "delete", 8, 6)
    assert 0 < made <= bound.forward_sequences and bound.upper_bound
    assert interactions_cost(tiny_lm, problem, units, "delete", 8, 0).forward_sequences == 0


def test_the_plan_completes_the_cheapest_pairs_of_the_best_ranked_units_first():
    known = {E, s(0), s(1), s(2), s(3)}
    assert plan_extra(known, [3, 1, 0], 1) == [s(1, 3)]
    assert plan_extra(known, [3, 1, 0], 2) == [s(1, 3), s(0, 3)]
    # without singles a pair needs three sets; one that does not fit is skipped
    assert plan_extra({E}, [5, 6, 7], 2) == []
    assert plan_extra({E}, [5, 6, 7], 4) == [s(5), s(6), s(5, 6)]
    # the unmasked prompt first when unknown, never alone
    assert plan_extra(set(), [0, 1], 3) == []
    assert plan_extra(set(), [0, 1], 4) == [E, s(0), s(1), s(0, 1)]


# ----- constructed interactions: the top one found is the constructed one ---------------------
N = 8
NOISE = {u: 0.05 * (u % 3) for u in range(N)}  # small additive effects of every unit


def condition(chosen: frozenset[int]) -> float:
    """The answer needs both parts of a condition (units 2 and 5): removing either breaks it."""
    return -5.0 * bool(chosen & {2, 5}) - sum(NOISE[u] for u in chosen)


def duplicated(chosen: frozenset[int]) -> float:
    """An instruction written twice (units 1 and 6): only removing both loses it."""
    return -5.0 * ({1, 6} <= chosen) - sum(NOISE[u] for u in chosen)


def _search_like(value):
    """What a search leaves: L(∅), the singles, the best 2-set (scored exhaustively here);
    the result's scores are the singles' drops."""
    objective = FakeObjective(value)
    objective([E] + [s(u) for u in range(N)])
    pairs = [frozenset(p) for p in itertools.combinations(range(N), 2)]
    objective(pairs)
    best = min(pairs, key=lambda p: (objective.known[p], sorted(p)))
    objective.known = {k: v for k, v in objective.known.items() if len(k) < 2 or k == best}
    scores = [objective.known[E] - objective.known[s(u)] for u in range(N)]
    return objective, sorted(best), scores


@pytest.mark.parametrize(
    ("value", "pair", "positive"), [(condition, [2, 5], False), (duplicated, [1, 6], True)]
)
def test_the_constructed_interaction_is_the_top_one(value, pair, positive):
    objective, selected, scores = _search_like(value)
    spent = objective.spent
    found = interactions_after_search(objective, selected, scores, extra_passes=N)
    assert objective.spent - spent == found.extra_passes <= N
    top = found.pairs[0]
    assert top.units == pair and (top.value > 0) is positive
    assert abs(top.value) == pytest.approx(5.0)
    assert all(abs(p.value) < 1e-9 for p in found.pairs[1:])  # the rest add up


def test_candidates_are_the_set_then_the_strongest_others():
    assert top_candidates([4, 1], [0.1, -3.0, 0.5, 2.0, 0.0, 0.2], size=4) == [4, 1, 3, 2]
    assert top_candidates([0, 1, 2], [1.0, 1.0, 1.0, 1.0], size=2) == [0, 1, 2]


# ----- the record: typed, saved, read back ----------------------------------------------------
SAMPLE = Interactions(
    pairs=[
        Interaction([1, 3], 4.0, [0.5, 0.7], 2.8),
        Interaction([0, 2], 0.3, [0.9, 0.8], -1.4),
    ],
    extra_passes=2,
    candidates=[1, 3, 0, 2],
    from_scored=4,
    measured=6,
)


def test_the_record_round_trips_and_relabels():
    assert Interactions.from_dict(json.loads(json.dumps(asdict(SAMPLE)))) == SAMPLE
    record = RunRecord(interactions=SAMPLE)
    assert RunRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert RunRecord.from_flat(record.flat()) == record
    moved = SAMPLE.relabel([10, 11, 12, 13])
    assert [p.units for p in moved.pairs] == [[11, 13], [10, 12]]
    assert moved.candidates == [11, 13, 10, 12]


@pytest.fixture(scope="module")
def result(tiny_lm, problem):
    attr = attribute(tiny_lm, problem, "xprompt", "word", params={"k": 2, "budget": 12})
    return replace(attr, record=replace(attr.record, interactions=SAMPLE))


def test_results_with_and_without_interactions_load(result):
    again = Attribution.from_json(result.to_json())
    assert again.record.interactions == SAMPLE and again == result
    old = result.to_dict()
    del old["record"]["interactions"]  # saved before interactions existed
    assert Attribution.from_dict(json.loads(json.dumps(old))).record.interactions is None
    flat = {**result.to_dict(), "format": 2, "metadata": result.metadata}
    del flat["record"]
    assert Attribution.from_dict(flat).record.interactions == SAMPLE


# ----- the views ----------------------------------------------------------------------------
def test_the_accessor_resolves_texts_and_words(result):
    shown = result.interactions
    texts = [u.text for u in result.units]
    first, second = shown.pairs
    assert first.texts == (texts[1], texts[3]) and not first.together
    assert first.line() == (
        f"either suffices: {texts[1].strip()!r} / {texts[3].strip()!r} "
        "(+2.80 nats beyond their sum)"
    )
    assert second.together and second.line().startswith("needed together: ")
    assert second.line().endswith("(-1.40 nats below their sum)")
    assert shown.partners() == {1: [3], 3: [1], 0: [2], 2: [0]}
    assert nats(2.8) == "+2.80" and nats(-0.004) == "-4.0e-03" and nats(0.0) == "+0.00"
    assert shown.note() == (
        "interactions among the top 4 units: 6 of 6 pairs measured "
        "(4 from the search's own sets, 2 extra passes)"
    )
    assert replace(result, record=RunRecord()).interactions is None


def test_console_and_html_show_them(result):
    console = Console(width=200, record=True)
    console.print(render_console(result))
    text = console.export_text()
    for pair in result.interactions.pairs:
        assert pair.line() in text
    assert "Units that act together" in text
    page = render_html(result)
    assert re.search(r'<span data-unit="1" data-partners="3"', page)
    assert re.search(r'<span data-unit="2" data-partners="0"', page)
    assert '<li data-units="1 3" data-value="2.8"' in page
    assert "either suffices" in page and "needed together" in page
    # without interactions nothing of them is drawn
    plain = render_html(replace(result, record=RunRecord()))
    assert "data-partners" not in plain and "pxr-interactions" not in plain


def test_the_page_view_carries_pairs_and_partners(result):
    view = explanation_view("e", "r", result, {})
    found = view["interactions"]
    assert found["partners"] == {"1": [3], "3": [1], "0": [2], "2": [0]}
    assert [p["units"] for p in found["pairs"]] == [[1, 3], [0, 2]]
    assert found["pairs"][0]["line"] == result.interactions.pairs[0].line()
    assert (
        explanation_view("e", "r", replace(result, record=RunRecord()), {})["interactions"] is None
    )
