"""Conversations: turns traced through the template, the `turn` granularity, masking an
earlier assistant turn, a given final answer, bad input, round trips and turn labels."""

from __future__ import annotations

import copy
import json
import math

import pytest
from cli_helpers import serve_model
from rich.console import Console
from typer.testing import CliRunner

from promptxray import Attribution, build_problem, explain
from promptxray.cli import app
from promptxray.conversation import check_messages, conversation_from
from promptxray.errors import (
    EmptyPromptError,
    InvalidParameterError,
    ModelLoadError,
    PromptXrayError,
)
from promptxray.model import LanguageModel, Message
from promptxray.model.encoding import PromptEncoder
from promptxray.render.console import render_console
from promptxray.render.heatmap import unit_labels
from promptxray.render.html import render_html

MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What colour is the sky?"},
    {"role": "assistant", "content": "The sky is blue."},
    {"role": "user", "content": "And at night? Say why."},
]
ANSWER = " It is dark, since the sun is gone."


def no_model():
    pytest.fail("the model must not load for input that is refused")


def token_result(tiny_lm, method: str = "grad_x_input", **kwargs) -> Attribution:
    return explain(
        messages=MESSAGES,
        model=tiny_lm,
        method=method,
        target=ANSWER,
        granularity="token",
        **kwargs,
    )


# ----- encoding and units -------------------------------------------------------------------


def test_three_turn_conversation_units_know_their_turn_and_role(tiny_lm):
    problem = build_problem(tiny_lm, messages=MESSAGES, max_new_tokens=3)
    units = problem.token_units()
    assert {u.turn for u in units} == {0, 1, 2, 3}
    for turn, message in enumerate(MESSAGES):
        mine = [u for u in units if u.turn == turn]
        assert {u.role for u in mine} == {message["role"]}
        # the turn's tokens rebuild its content exactly: no template text, no gaps
        assert "".join(u.text for u in mine) == message["content"]
        assert (
            "".join(message["content"][a:b] for a, b in (u.span for u in mine))
            == (message["content"])
        )
    assert not {"<|im_start|>", "<|im_end|>", "assistant\n"} & {u.text for u in units}
    # every non-template position is a unit token, every template position is not
    template = problem.template_positions
    assert len(units) + len(template) == len(problem.encoding.ids)
    pieces = tiny_lm.token_pieces([problem.ids[p] for p in template])
    assert pieces.count("<|im_start|>") == 5  # 4 turns + the generation prompt
    assert problem.answer_turn == 4 and problem.output_source == "generated"


def test_earlier_output_before_a_span_is_the_answer_turn(tiny_lm):
    whole = build_problem(tiny_lm, messages=MESSAGES, target=ANSWER)
    cut = whole.output_spans[3][0]
    problem = build_problem(tiny_lm, messages=MESSAGES, target=ANSWER, span=(cut, len(ANSWER)))
    earlier = [u for u in problem.token_units() if u.role == "output"]
    assert len(earlier) == 3 and {u.turn for u in earlier} == {4}
    assert "".join(u.text for u in earlier) == ANSWER[:cut]
    turn_units = problem.units("turn")
    assert [(u.role, u.turn) for u in turn_units] == [
        ("system", 0),
        ("user", 1),
        ("assistant", 2),
        ("user", 3),
        ("output", 4),
    ]
    assert turn_units[-1].text == ANSWER[:cut].strip()


def test_repeated_roles_never_share_a_unit(tiny_lm):
    """Two user turns with the same words: word units stay apart, one set per turn."""
    messages = [
        {"role": "user", "content": "blue sky"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "blue sky"},
    ]
    units = build_problem(tiny_lm, messages=messages, target=" yes").units("word")
    assert [(u.text, u.role, u.turn) for u in units] == [
        ("blue", "user", 0),
        ("sky", "user", 0),
        ("ok", "assistant", 1),
        ("blue", "user", 2),
        ("sky", "user", 2),
    ]


def test_a_model_without_chat_template_reads_turns_joined_by_blank_lines(tiny_lm):
    tok = copy.copy(tiny_lm.tokenizer)
    tok.chat_template = None
    encoder = PromptEncoder(tok, tiny_lm.max_context)
    messages = [Message(m["role"], m["content"]) for m in MESSAGES]
    enc = encoder.encode_messages(messages)
    text = tok.decode(enc.ids)
    assert text.endswith("\n\n".join(m.content for m in messages))
    for turn, message in enumerate(messages):
        spans = [s for s, t in zip(enc.spans, enc.turns, strict=True) if t == turn]
        assert "".join(message.content[a:b] for a, b in spans) == message.content
        assert {r for r, t in zip(enc.roles, enc.turns, strict=True) if t == turn} == {message.role}
    # a system prompt and a prompt read as they always did: joined by a blank line
    old = encoder.encode_prompt("Why?", system_prompt="Be kind.")
    assert tok.decode(old.ids).endswith("Be kind.\n\nWhy?")
    assert old.turns.count(0) == old.roles.count("system") > 0


def test_a_template_that_refuses_or_drops_a_role_is_one_line(tiny_lm):
    tok = copy.copy(tiny_lm.tokenizer)
    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    )
    refusing = PromptEncoder(tok, tiny_lm.max_context)
    with pytest.raises(InvalidParameterError, match="refuses the conversation: System role"):
        refusing.encode_messages([Message("system", "S"), Message("user", "U")])
    assert refusing.encode_messages([Message("user", "U")]).roles.count("user") == 1

    tok.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'system' %}"
        "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endif %}{% endfor %}"
    )
    dropping = PromptEncoder(tok, tiny_lm.max_context)
    with pytest.raises(ModelLoadError, match="system text of turn 0 verbatim"):
        dropping.encode_messages([Message("system", "S"), Message("user", "U")])


# ----- the turn granularity ---------------------------------------------------------------


def test_turn_scores_sum_token_scores_for_grad_x_input(tiny_lm):
    tokens = token_result(tiny_lm)
    turns = tokens.aggregate("turn")
    assert [u.turn for u in turns.units] == [0, 1, 2, 3]
    assert [u.text for u in turns.units] == [m["content"] for m in MESSAGES]
    for unit, score in zip(turns.units, turns.scores, strict=True):
        mine = [s for u, s in zip(tokens.units, tokens.scores, strict=True) if u.turn == unit.turn]
        assert score == pytest.approx(sum(mine), abs=1e-9)
        assert score != 0.0
    assert sum(turns.scores) == pytest.approx(sum(tokens.scores), rel=1e-9)
    direct = explain(
        messages=MESSAGES, model=tiny_lm, method="grad_x_input", target=ANSWER, granularity="turn"
    )
    assert direct.scores == pytest.approx(turns.scores, rel=1e-9)


def test_turn_scores_follow_the_norm_rule_for_grad_norm(tiny_lm):
    tokens = token_result(tiny_lm, method="grad_norm")
    turns = tokens.aggregate("turn")
    for unit, score in zip(turns.units, turns.scores, strict=True):
        mine = [s for u, s in zip(tokens.units, tokens.scores, strict=True) if u.turn == unit.turn]
        assert score == pytest.approx(math.sqrt(sum(s * s for s in mine)), rel=1e-9)
        assert score < sum(mine)  # the norm, not the sum


# ----- masking an earlier assistant turn ----------------------------------------------------


def test_leave_one_out_masks_an_earlier_assistant_turn(tiny_lm):
    result = explain(
        messages=MESSAGES,
        model=tiny_lm,
        method="leave_one_out",
        target=ANSWER,
        granularity="turn",
        masking="delete",
    )
    assert [(u.role, u.turn) for u in result.units] == [
        ("system", 0),
        ("user", 1),
        ("assistant", 2),
        ("user", 3),
    ]
    # recompute the assistant turn's score by hand: delete its tokens, score the target
    problem = build_problem(tiny_lm, messages=MESSAGES, target=ANSWER)
    assistant = problem.units("turn")[2]
    gone = {problem.source_positions[k] for k in assistant.tokens}
    kept = [t for p, t in enumerate(problem.ids) if p not in gone]
    assert len(kept) == len(problem.ids) - len(gone) and len(gone) == len(assistant.tokens)
    full = float(tiny_lm.score(problem.ids, problem.target_start).sum())
    masked = float(tiny_lm.score(kept, problem.target_start - len(gone)).sum())
    assert masked != pytest.approx(full, abs=1e-6)
    assert result.scores[2] == pytest.approx(full - masked, abs=2e-4)


def test_leave_one_out_word_units_of_each_turn(tiny_lm):
    result = explain(
        messages=MESSAGES, model=tiny_lm, method="leave_one_out", target=ANSWER, granularity="word"
    )
    assistant = [
        (u.text, s) for u, s in zip(result.units, result.scores, strict=True) if u.turn == 2
    ]
    assert [t for t, _ in assistant] == ["The", "sky", "is", "blue."]
    assert all(s != 0.0 for _, s in assistant)


# ----- a given final answer and the single-turn case ----------------------------------------


def test_a_final_assistant_message_is_the_given_target(tiny_lm):
    given = explain(
        messages=[*MESSAGES, {"role": "assistant", "content": ANSWER}],
        model=tiny_lm,
        method="grad_x_input",
        granularity="word",
    )
    same = explain(
        messages=MESSAGES, model=tiny_lm, method="grad_x_input", granularity="word", target=ANSWER
    )
    assert given.output == ANSWER and given.metadata["output_source"] == "given"
    assert given.units == same.units
    assert given.scores == pytest.approx(same.scores, rel=1e-9)
    assert given.messages == MESSAGES  # the turns before the answer


def test_one_user_message_scores_like_a_prompt(tiny_lm):
    prompt = "Name three fruits, please."
    a = explain(prompt, model=tiny_lm, method="grad_x_input", max_new_tokens=4)
    b = explain(
        messages=[{"role": "user", "content": prompt}],
        model=tiny_lm,
        method="grad_x_input",
        max_new_tokens=4,
    )
    assert a.output == b.output and a.units == b.units
    assert a.scores == pytest.approx(b.scores, rel=1e-9) and any(a.scores)
    assert a.messages is None and b.messages is None and b.prompt == prompt
    with_system = explain(
        prompt, system_prompt="Be kind.", model=tiny_lm, method="grad_x_input", target=" Apple"
    )
    as_messages = explain(
        messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": prompt}],
        model=tiny_lm,
        method="grad_x_input",
        target=" Apple",
    )
    assert with_system.scores == pytest.approx(as_messages.scores, rel=1e-9)
    assert [u.turn for u in with_system.units if u.role == "system"] == [0, 0]


# ----- bad input ----------------------------------------------------------------------------

BAD = [
    ({"role": "user", "content": "hi"}, InvalidParameterError, "must be a list"),
    ("hello", InvalidParameterError, "must be a list"),
    (["hello"], InvalidParameterError, "Turn 0 must be a"),
    ([{"role": "user"}], InvalidParameterError, "Turn 0 has no content"),
    ([{"role": "tool", "content": "x"}], InvalidParameterError, "unknown role 'tool'"),
    ([], EmptyPromptError, "conversation is empty"),
    ([{"role": "user", "content": "  "}], EmptyPromptError, "Turn 0 (user) is empty"),
    ([{"role": "user", "content": 3}], InvalidParameterError, "content must be text"),
    ([{"role": "user", "content": "x", "name": "a"}], InvalidParameterError, "only role and"),
    (
        [{"role": "user", "content": "x"}, {"role": "system", "content": "y"}],
        InvalidParameterError,
        "ends with a system message",
    ),
    ([{"role": "assistant", "content": "x"}], EmptyPromptError, "no user message"),
]


@pytest.mark.parametrize(("messages", "error", "fragment"), BAD)
def test_bad_messages_are_refused_before_the_model_loads(messages, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        explain(messages=messages, model=no_model)


def test_prompt_and_messages_together_are_refused():
    with pytest.raises(InvalidParameterError, match="not both"):
        explain("hi", messages=MESSAGES, model=no_model)
    with pytest.raises(InvalidParameterError, match="system prompt or messages"):
        explain(system_prompt="S", messages=MESSAGES, model=no_model)
    with pytest.raises(EmptyPromptError, match="Give a prompt or messages"):
        explain(model=no_model)
    ends_with_answer = [*MESSAGES, {"role": "assistant", "content": "x"}]
    with pytest.raises(InvalidParameterError, match="do not give a target as well"):
        explain(messages=ends_with_answer, target="y", model=no_model)
    assert conversation_from("hi").context == (Message("user", "hi"),)
    assert check_messages(ends_with_answer).answer == "x"


# ----- persistence and views ----------------------------------------------------------------


def test_round_trip_keeps_messages_and_turns(tiny_lm):
    a = token_result(tiny_lm, matrix=True)
    b = Attribution.from_json(a.to_json())
    assert b == a and b.messages == MESSAGES
    assert [u.turn for u in b.units] == [u.turn for u in a.units]
    assert b.aggregate("turn").scores == pytest.approx(a.aggregate("turn").scores, rel=1e-12)
    assert b.aggregate("word").units == a.aggregate("word").units


def test_results_saved_before_turns_still_load_and_regroup(tiny_lm):
    a = explain("Say hi to Bob.", model=tiny_lm, method="grad_x_input", target=" Hi Bob")
    d = a.to_dict()
    del d["messages"]
    for unit in d["base_units"]:
        del unit["turn"]
    old = Attribution.from_dict(d)
    assert old.messages is None and {u.turn for u in old.units} == {None}
    assert old.scores == pytest.approx(a.scores, rel=1e-12)
    assert [u.text for u in old.aggregate("turn").units] == ["Say hi to Bob."]


def test_views_label_each_turn(tiny_lm):
    a = explain(
        messages=MESSAGES, model=tiny_lm, method="grad_x_input", target=ANSWER, granularity="turn"
    )
    console = Console(record=True, width=120)
    console.print(render_console(a, top=4))
    text = console.export_text()
    for turn, m in enumerate(MESSAGES):
        assert f"[turn {turn} · {m['role']}]" in text
    assert "[turn 4 · assistant] Output (target highlighted)" in text
    html = render_html(a, top=4)
    assert "[turn 2 · assistant]" in html and 'data-turn="2"' in html
    assert html.count("The sky is blue.") >= 1
    labels = unit_labels(a)
    assert labels[0].startswith("t0 sys: ") and labels[2].startswith("t2 asst: ")
    single = explain("Hi there", model=tiny_lm, method="grad_x_input", target=" Hello")
    assert "[turn" not in render_html(single)


# ----- CLI ----------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def loads(monkeypatch, tiny_lm) -> list:
    return serve_model(monkeypatch, tiny_lm)


def test_cli_explains_a_conversation_file_and_stdin(loads, tmp_path):
    path = tmp_path / "chat.json"
    path.write_text(json.dumps([*MESSAGES, {"role": "assistant", "content": ANSWER}]))
    result = runner.invoke(
        app,
        ["explain", "--messages", str(path), "-m", "grad_x_input", "-g", "turn", "--json", "-"],
    )
    assert result.exit_code == 0, result.output
    attr = Attribution.from_json(result.stdout)
    assert attr.messages == MESSAGES and attr.output == ANSWER
    assert [u.turn for u in attr.units] == [0, 1, 2, 3]
    piped = runner.invoke(
        app,
        ["explain", "--messages", "-", "-m", "grad_x_input", "-g", "turn", "--json", "-"],
        input=path.read_text(),
    )
    assert piped.exit_code == 0, piped.output
    assert Attribution.from_json(piped.stdout).scores == pytest.approx(attr.scores, rel=1e-9)


@pytest.mark.parametrize(
    ("payload", "extra", "fragment"),
    [
        ('{"role": "user", "content": "hi"}', [], "must be a list"),
        ('[{"role": "robot", "content": "hi"}]', [], "unknown role 'robot'"),
        ("[]", [], "conversation is empty"),
        ('[{"role": "user", "content": ""}]', [], "Turn 0 (user) is empty"),
        ("[{nope", [], "is not JSON"),
        ('[{"role": "user", "content": "hi"}]', ["a prompt"], "not both"),
        ('[{"role": "user", "content": "hi"}]', ["--system", "S"], "not both"),
    ],
)
def test_cli_bad_messages_fail_in_one_line(loads, tmp_path, payload, extra, fragment):
    path = tmp_path / "chat.json"
    path.write_text(payload)
    result = runner.invoke(app, ["explain", "--messages", str(path), *extra])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], lines
    assert loads == []


def test_cli_needs_a_prompt_or_messages(loads):
    result = runner.invoke(app, ["heatmap", "--out", "x.png"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: Give a prompt or messages to explain."


def test_errors_are_the_projects_own():
    for messages, error, _ in BAD:
        assert issubclass(error, PromptXrayError)
        with pytest.raises(error):
            check_messages(messages)


def test_language_model_delegates_encode_messages(tiny_lm):
    assert isinstance(tiny_lm, LanguageModel)
    enc = tiny_lm.encode_messages([Message("user", "Hi")])
    assert enc.ids == tiny_lm.encode_prompt("Hi").ids and enc.turns.count(0) == enc.roles.count(
        "user"
    )
