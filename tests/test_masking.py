"""Masking operators: which ids change, which stay, and the display text."""

from __future__ import annotations

import pytest

from promptxray.errors import InvalidParameterError, PromptXrayError
from promptxray.masking import (
    OPERATORS,
    baseline_token_id,
    keep_only,
    mask_context,
    masked_prompt_text,
)
from promptxray.targets import build_problem

PROMPT = "The sky is blue. Why is that?"


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return build_problem(tiny_lm, PROMPT, target=" Because of light.")


def positions_of(problem, units, i):
    return [problem.source_positions[t] for t in units[i].tokens]


def test_delete_removes_exactly_the_units_tokens(tiny_lm, problem):
    units = problem.units("word")
    assert [u.text for u in units][:2] == ["The", "sky"]
    ctx = mask_context(tiny_lm, problem, units, [1], "delete")
    gone = positions_of(problem, units, 1)
    expected = [t for p, t in enumerate(problem.context_ids) if p not in gone]
    assert ctx.ids == expected
    assert len(ctx.ids) == len(problem.context_ids) - len(gone)
    assert ctx.zero_positions == [] and ctx.operator == "delete"
    assert "sky" not in tiny_lm.decode(ctx.ids) and "blue" in tiny_lm.decode(ctx.ids)


def test_replace_keeps_length_and_swaps_only_the_unit(tiny_lm, problem):
    units = problem.units("word")
    ctx = mask_context(tiny_lm, problem, units, [1, 3], "replace")
    changed = set(positions_of(problem, units, 1) + positions_of(problem, units, 3))
    assert len(ctx.ids) == len(problem.context_ids)
    for p, (old, new) in enumerate(zip(problem.context_ids, ctx.ids, strict=True)):
        assert new == (baseline_token_id(tiny_lm) if p in changed else old)
    # The baseline is an ordinary text token (a space), not a control token.
    assert tiny_lm.decode([baseline_token_id(tiny_lm)]) == " "
    other = mask_context(tiny_lm, problem, units, [1], "replace", baseline_id=42)
    assert {other.ids[p] for p in positions_of(problem, units, 1)} == {42}


def test_zero_keeps_ids_and_names_positions(tiny_lm, problem):
    units = problem.units("token")
    ctx = mask_context(tiny_lm, problem, units, [0, 2], "zero")
    assert ctx.ids == problem.context_ids
    assert ctx.zero_positions == [problem.source_positions[0], problem.source_positions[2]]


def test_template_is_never_masked(tiny_lm, problem):
    units = problem.units("word")
    template = problem.template_positions
    for operator in OPERATORS:
        ctx = keep_only(tiny_lm, problem, units, [], operator)
        if operator == "delete":
            assert ctx.ids == [problem.context_ids[p] for p in template]
        elif operator == "replace":
            assert [ctx.ids[p] for p in template] == [problem.context_ids[p] for p in template]
        else:
            assert ctx.zero_positions == problem.source_positions


def test_keep_only_is_the_complement(tiny_lm, problem):
    units = problem.units("word")
    kept = keep_only(tiny_lm, problem, units, [0, 2], "delete")
    masked = mask_context(tiny_lm, problem, units, [1, *range(3, len(units))], "delete")
    assert kept == masked
    assert tiny_lm.decode(kept.ids).count("The sky") == 0
    assert "The is" in tiny_lm.decode(kept.ids)


def test_masked_prompt_text(problem):
    units = problem.units("word")
    assert masked_prompt_text(problem, units, []) == PROMPT
    assert masked_prompt_text(problem, units, [1]) == "The is blue. Why is that?"
    assert masked_prompt_text(problem, units, [0]) == "sky is blue. Why is that?"
    assert masked_prompt_text(problem, units, [1, 2]) == "The blue. Why is that?"
    assert masked_prompt_text(problem, units, range(len(units))) == ""
    tokens = problem.units("token")
    assert masked_prompt_text(problem, tokens, [1]) == "The is blue. Why is that?"


def test_errors(tiny_lm, problem):
    units = problem.units("word")
    with pytest.raises(InvalidParameterError, match="delete, replace, zero"):
        mask_context(tiny_lm, problem, units, [0], "blank")
    with pytest.raises(PromptXrayError, match="out of range"):
        mask_context(tiny_lm, problem, units, [len(units)])
    with pytest.raises(PromptXrayError, match="out of range"):
        keep_only(tiny_lm, problem, units, [-1])
