"""`ablate` against plain model calls: the masked context, PR and KL recomputed by hand.

The independent side never touches `masking`, the scorer or `ablate`'s helpers: it
drops (or replaces, or zeroes) the chosen units' token positions itself, runs the
Hugging Face model once per context and reads the log-softmax rows that predict the
target tokens.
"""

from __future__ import annotations

import math

import pytest
import torch
from samples import MESSAGES as CONVERSATION
from samples import PROMPT

from promptxray.api import ablate, problem_for, reference
from promptxray.masking import baseline_token_id

SYSTEM = "You answer in one line."
TARGET = " The sky is grey and low."
# the shared conversation with its answer: the last assistant turn is the target
MESSAGES = [*CONVERSATION, {"role": "assistant", "content": "Black, with stars."}]


@pytest.fixture(scope="module")
def problem(tiny_lm):
    return problem_for(tiny_lm, PROMPT, system_prompt=SYSTEM, target=TARGET)


def by_hand(lm, problem, units, removed, operator):
    """Target log-distributions with the removed units' tokens taken away, by hand."""
    context = list(problem.context_ids)
    sources = [i for i, role in enumerate(problem.roles) if role != "template"]
    drop = sorted({sources[t] for i in removed for t in units[i].tokens})
    embed = lm.model.get_input_embeddings()
    if operator == "delete":
        ids = [t for p, t in enumerate(context) if p not in set(drop)]
        embeds = embed(torch.tensor(ids + problem.target_ids))
    elif operator == "replace":
        ids = [baseline_token_id(lm) if p in set(drop) else t for p, t in enumerate(context)]
        embeds = embed(torch.tensor(ids + problem.target_ids))
    else:
        ids = context
        embeds = embed(torch.tensor(ids + problem.target_ids)).clone()
        embeds[drop] = 0.0
    with torch.no_grad():
        logits = lm.model(inputs_embeds=embeds[None]).logits[0].float()
    n = len(problem.target_ids)
    rows = logits[len(ids) - 1 : len(ids) - 1 + n]
    return torch.log_softmax(rows, dim=-1), ids


def measures(masked, full, target):
    index = torch.tensor(target)[:, None]
    diff = (masked.gather(1, index) - full.gather(1, index))[:, 0].double()
    m, o = masked.double(), full.double()
    token_kl = (m.exp() * (m - o)).sum(-1).clamp_min(0.0)
    return diff, token_kl


@pytest.mark.parametrize("operator", ["delete", "replace", "zero"])
def test_pr_and_kl_equal_plain_model_calls(tiny_lm, problem, operator):
    units = problem.units("word")
    chosen = [0, 3, len(units) - 2]
    result = ablate(tiny_lm, problem, units, chosen, operator)
    masked, _ = by_hand(tiny_lm, problem, units, chosen, operator)
    full, _ = by_hand(tiny_lm, problem, units, [], operator)
    diff, token_kl = measures(masked, full, problem.target_ids)

    assert result.removed == tuple(sorted(chosen)) and result.operator == operator
    assert result.token_pr == pytest.approx(diff.exp().tolist(), rel=1e-4)
    assert result.pr == pytest.approx(math.exp(float(diff.mean())), rel=1e-4)
    assert result.pr_seq_log10 == pytest.approx(float(diff.sum()) / math.log(10), abs=1e-4)
    assert result.token_kl == pytest.approx(token_kl.tolist(), rel=1e-3, abs=1e-7)
    assert result.kl == pytest.approx(float(token_kl.mean()), rel=1e-3, abs=1e-7)
    assert result.kl > 0 and result.pr != pytest.approx(1.0)  # the removal did something
    assert result.regenerated is None and result.regenerated_ids is None


def test_nothing_removed_changes_nothing(tiny_lm, problem):
    result = ablate(tiny_lm, problem, problem.units("word"), [])
    assert result.pr == pytest.approx(1.0, abs=1e-6)
    assert result.kl == pytest.approx(0.0, abs=1e-7)
    assert result.masked_prompt == PROMPT


def test_keep_only_removes_every_other_unit(tiny_lm, problem):
    units = problem.units("sentence")
    kept = ablate(tiny_lm, problem, units, [1], keep=True)
    removed = ablate(tiny_lm, problem, units, [i for i in range(len(units)) if i != 1])
    assert kept.removed == removed.removed and 1 not in kept.removed
    assert kept.pr == pytest.approx(removed.pr) and kept.kl == pytest.approx(removed.kl)


def test_regeneration_continues_the_masked_context(tiny_lm, problem):
    units = problem.units("word")
    heard, steps = [], []
    result = ablate(
        tiny_lm,
        problem,
        units,
        [1, 2],
        regenerate=5,
        on_token=heard.append,
        progress=lambda done, total: steps.append((done, total)),
    )
    _, ids = by_hand(tiny_lm, problem, units, [1, 2], "delete")
    expected = tiny_lm.generate(ids, max_new_tokens=5)
    assert result.regenerated_ids == expected == heard
    assert result.regenerated == tiny_lm.decode(expected)
    assert steps[-1] == (6, 6) and steps[0][1] == 6
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)


def test_a_reference_is_reused_and_gives_the_same_numbers(tiny_lm, problem, monkeypatch):
    units = problem.units("word")
    fresh = ablate(tiny_lm, problem, units, [2])
    ref = reference(tiny_lm, problem)
    passes = []
    real = tiny_lm.target_log_distributions
    monkeypatch.setattr(
        tiny_lm, "target_log_distributions", lambda *a: passes.append(1) or real(*a)
    )
    reused = ablate(tiny_lm, problem, units, [2], baseline=ref)
    assert len(passes) == 1  # the masked context only
    assert reused.pr == fresh.pr and reused.kl == fresh.kl


def test_marked_texts_join_back_and_strike_the_removed_units(tiny_lm, problem):
    units = problem.units("word")
    chosen = [i for i, u in enumerate(units) if u.text.strip() in ("calm", "one", "one.")]
    chosen += [next(i for i, u in enumerate(units) if u.role == "system")]
    result = ablate(tiny_lm, problem, units, chosen)
    assert result.prompt.text == PROMPT and result.system.text == SYSTEM
    struck = [p.strip() for p, cut in result.prompt.pieces + result.system.pieces if cut]
    assert sorted(struck) == sorted(units[i].text.strip() for i in chosen)
    assert "calm" not in result.masked_prompt and result.masked_messages is None
    assert [t.role for t in result.turns] == ["system", "user"]


def test_a_conversation_gets_every_turn_cut(tiny_lm):
    problem = problem_for(tiny_lm, messages=MESSAGES)
    units = problem.units("turn")
    earlier = next(i for i, u in enumerate(units) if u.role == "assistant")
    result = ablate(tiny_lm, problem, units, [earlier])
    assert result.masked_messages is not None
    assert [m["content"] for m in result.masked_messages] == [
        "You answer in one short line.",
        "Name a colour of the sea.",
        "",
        "And of the sky at night?",
    ]
    cut = [t for t in result.turns if any(removed for _, removed in t.pieces)]
    assert [(t.role, t.turn, t.text) for t in cut] == [("assistant", 2, "Deep green, mostly.")]
