"""The typed run record: what methods write, what views read, and older files read back."""

from __future__ import annotations

import json

import pytest

from promptxray import Attribution, attribute, build_problem
from promptxray.record import Completeness, Hierarchy, RunRecord, Search

PROMPT = "The cat sat on the mat. It was warm there. Dogs barked outside all night."


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, max_new_tokens=3)


def _as_format_2(attr: Attribution) -> dict:
    """The dict a result saved before the record was typed: a flat `metadata`."""
    d = attr.to_dict()
    d["format"] = 2
    d["metadata"] = attr.metadata
    del d["record"]
    return d


@pytest.mark.parametrize(
    ("method", "params", "section"),
    [
        ("integrated_gradients", {"steps": 4}, "completeness"),
        ("leave_one_out", {"coarse": "sentence", "refine": 1}, "hierarchy"),
        ("xprompt", {"k": 2, "budget": 12}, "search"),
        ("xprompt", {"k": 2, "coarse": "sentence", "refine": 1}, "hierarchy"),
        ("xprompt_paper", {"k": 2, "iterations": 3}, "search"),
    ],
)
def test_methods_write_typed_sections_that_survive_both_formats(
    tiny_lm, problem, method, params, section
):
    attr = attribute(tiny_lm, problem, method, "word", params=params)
    assert getattr(attr.record, section) is not None
    assert attr.record.cost.forward_passes > 0 and attr.record.provenance.params
    # format 3 round trip: the typed record comes back equal
    again = Attribution.from_json(attr.to_json())
    assert again.record == attr.record
    # a format-2 file (flat metadata) reads into the same typed record
    old = Attribution.from_dict(json.loads(json.dumps(_as_format_2(attr))))
    assert old.record == attr.record
    assert old.notes == attr.notes and old.inherited == attr.inherited


def test_a_hand_written_format_2_file_reads_into_its_sections():
    meta = {
        "method": "integrated_gradients",
        "method_version": 2,
        "family": "gradient",
        "params": {"steps": 20},
        "aggregation": "sum",
        "model": "m",
        "device": "cpu",
        "dtype": "float32",
        "output_source": "given",
        "seconds": 1.5,
        "forward_passes": 22,
        "forward_calls": 3,
        "backward_passes": 20,
        "completeness": {
            "attribution_sum": 1.0,
            "log_prob_input": -1.0,
            "log_prob_baseline": -3.0,
            "difference": 2.0,
            "gap": -1.0,
            "relative_gap": 0.5,
            "summed_over": "source positions (user, system, earlier output)",
            "steps": 20,
            "tolerance": 0.1,
            "converged": False,
            "steps_tried": [[20, 0.5]],
            "a_key_from_a_later_version": 1,
        },
    }
    record = RunRecord.from_flat(meta)
    assert record.provenance.output_source == "given" and record.provenance.method_version == 2
    assert record.cost.backward_passes == 20 and record.cost.seconds == 1.5
    assert record.completeness == Completeness(
        1.0, -1.0, -3.0, 2.0, -1.0, 0.5, 20, 0.1, False, steps_tried=[[20, 0.5]]
    )
    assert record.completeness.note() == (
        "completeness gap 50.0% (20 steps), above the 10% tolerance at the step cap"
    )
    assert record.search is None and record.hierarchy is None and record.contrast is None


def test_notes_come_from_the_record_only():
    hierarchy = Hierarchy("sentence", 3, 1, [0.5, 0.1, 0.0], refined=[0, 1])
    record = RunRecord(hierarchy=hierarchy)
    assert "≈ marks units not refined" in hierarchy.note()
    assert "(1 of 3 sentences refined, 2 units scored exactly)" in hierarchy.note()
    flat = record.flat()
    assert flat["refined"] == [0, 1] and "refined" not in flat["hierarchy"]
    assert RunRecord.from_flat(flat) == record


def test_search_reads_its_start_sets():
    search = Search.from_dict(
        {
            "objective": -5.0,
            "baseline_objective": -1.0,
            "log_prob_drop": 4.0,
            "spent": 9,
            "starts": {"gradient": {"set": [0, 2], "objective": -4.0}},
        }
    )
    assert search.starts["gradient"].set == [0, 2] and search.starts["gradient"].objective == -4.0
