"""Prompt encoding, the three kinds of target, and the errors users can hit."""

import pytest

from promptxray import Attribution, build_problem, explain, load_model
from promptxray.errors import (
    EmptyPromptError,
    EmptyTargetError,
    ModelLoadError,
    PromptTooLongError,
    SpanError,
    UnknownGranularityError,
    UnknownMethodError,
)


def test_user_token_spans_rebuild_the_prompt(tiny_lm):
    prompt = "Translate to French:\n  the cat  sleeps."
    enc = tiny_lm.encode_prompt(prompt)
    user = [s for s, r in zip(enc.spans, enc.roles, strict=True) if r == "user"]
    assert "".join(prompt[a:b] for a, b in user) == prompt
    assert enc.roles[0] == "template" and enc.roles[-1] == "template"


def test_system_prompt_tokens_have_their_own_role(tiny_lm):
    enc = tiny_lm.encode_prompt("Hi", system_prompt="Be terse.")
    system = [s for s, r in zip(enc.spans, enc.roles, strict=True) if r == "system"]
    assert "".join("Be terse."[a:b] for a, b in system) == "Be terse."


def test_plain_text_model_without_chat_template(tiny_lm):
    from promptxray.model import LanguageModel

    tok = tiny_lm.tokenizer
    saved = tok.chat_template
    try:
        tok.chat_template = None
        plain = LanguageModel(tiny_lm.model, tok, name="plain")
        enc = plain.encode_prompt("just text")
        assert all(r == "user" for r in enc.roles)
    finally:
        tok.chat_template = saved


def test_generated_target_is_greedy_and_repeatable(tiny_lm):
    a = build_problem(tiny_lm, "Count: one two", max_new_tokens=5)
    b = build_problem(tiny_lm, "Count: one two", max_new_tokens=5)
    assert a.output_ids == b.output_ids and 0 < len(a.output_ids) <= 5
    assert a.target_span == (0, len(a.output))


def test_a_supplied_target_equals_the_same_text_generated(tiny_lm):
    # A random model's own tokens need not survive decode and re-encode, so the
    # "generation" here is a text's tokens handed over as the model's output ids.
    text = " Red, green and blue."
    ids, _ = tiny_lm.tokenize_text(text)
    prompt = "Name three colours."
    generated = explain(prompt, model=tiny_lm, method="grad_x_input", output_ids=ids)
    given = explain(prompt, model=tiny_lm, method="grad_x_input", target=text)
    assert generated.output == given.output == text
    assert given.scores == pytest.approx(generated.scores, abs=1e-6)
    assert [u.text for u in given.units] == [u.text for u in generated.units]
    sources = (generated.metadata["output_source"], given.metadata["output_source"])
    assert sources == ("generated", "given")


def test_span_target_makes_earlier_output_a_source(tiny_lm):
    full = build_problem(tiny_lm, "Tell me a story.", max_new_tokens=12)
    cut = full.output_spans[6][0]  # start of the 7th output token
    problem = build_problem(
        tiny_lm, "Tell me a story.", span=(cut, len(full.output)), output_ids=full.output_ids
    )
    assert problem.target_token_range == (6, len(full.output_ids))
    output_sources = [p for p in problem.source_positions if problem.roles[p] == "output"]
    assert len(output_sources) == 6
    a = explain(
        "Tell me a story.",
        model=tiny_lm,
        span=(cut, len(full.output)),
        output_ids=full.output_ids,
        granularity="token",
    )
    roles = {u.role for u in a.units}
    assert roles == {"user", "output"}
    assert a.target == full.output[cut:]


def test_json_round_trip_is_exact(tiny_lm):
    a = explain(
        "Name a fruit.",
        model=tiny_lm,
        method="grad_x_input",
        matrix=True,
        max_new_tokens=4,
        granularity="sentence",
    )
    b = Attribution.from_json(a.to_json())
    assert b == a
    assert b.scores == a.scores and b.matrix == a.matrix and b.units == a.units
    assert b.to_json() == a.to_json()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"prompt": ""}, EmptyPromptError),
        ({"prompt": "   \n"}, EmptyPromptError),
        ({"prompt": "hi", "method": "nope"}, UnknownMethodError),
        ({"prompt": "hi", "granularity": "chapter"}, UnknownGranularityError),
        ({"prompt": "hi", "span": (50, 900)}, SpanError),
        ({"prompt": "hi", "target": ""}, EmptyTargetError),
        ({"prompt": "word " * 600}, PromptTooLongError),
    ],
)
def test_bad_input_raises_clear_errors(tiny_lm, kwargs, error):
    prompt = kwargs.pop("prompt")
    with pytest.raises(error) as info:
        explain(prompt, model=tiny_lm, max_new_tokens=3, **kwargs)
    assert "\n" not in str(info.value) and len(str(info.value)) > 10


def test_missing_model_path_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model("./no/such/model")
