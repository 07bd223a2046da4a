"""The real default model (SmolLM2-135M-Instruct) end to end."""

import re

import pytest

from promptxray import explain

pytestmark = pytest.mark.integration


def test_sky_colour_prompt_points_at_the_question_words(default_lm):
    a = explain(
        "Answer in one word: What color is the sky?",
        model=default_lm,
        granularity="word",
        max_new_tokens=16,
    )
    # Observed (2026-11-23): output "The sky is a beautiful, vibrant color."; grad_norm
    # ranks "word:" first (15.3), then "sky?" (10.6), "Answer", "one", "color".
    assert "sky" in a.output.lower()
    top_unit, _ = a.top_k(1)[0]
    assert top_unit.role == "user"
    assert re.sub(r"\W", "", top_unit.text) in {"color", "sky", "What", "word", "one"}
    assert a.metadata["backward_passes"] == 1


def test_span_of_real_output_is_explained_by_prompt_and_earlier_output(default_lm):
    base = explain("Write a six-word story about love", model=default_lm, max_new_tokens=24)
    start = len(base.output) // 2
    a = explain(
        "Write a six-word story about love",
        model=default_lm,
        span=(start, len(base.output)),
        max_new_tokens=24,
    )
    assert a.output == base.output
    assert {u.role for u in a.units} == {"user", "output"}


def test_blue_rather_than_red_is_driven_by_the_sky(default_lm):
    a = explain(
        "Answer in one word: What color is the sky?",
        model=default_lm,
        target=" Blue",
        contrast=" Red",
        method="leave_one_out",
        granularity="word",
    )
    report = a.metadata["contrast"]
    # Observed (2026-11-24): log p(" Blue") = -14.42, log p(" Red") = -12.20 right after
    # the template (the model would rather start with "The sky is..."; both are
    # unlikely, and this small model slightly prefers " Red"). Leave-one-out's top
    # word is "sky?" (+0.77): deleting it moves the preference 0.77 nats further
    # towards " Red". Plausible: the sky is the one word that makes blue, rather
    # than red, the answer; "color" only asks for a colour, which both are.
    # Deleting the top three (Answer, What, sky?) takes the difference from -2.22
    # to -2.93. xprompt with k=2 picks {sky?, Answer} (-3.33).
    top_unit, top_score = a.top_k(1, by="support")[0]
    assert re.sub(r"\W", "", top_unit.text) == "sky" and top_score > 0.3
    full = report["full"]
    assert full["difference"] == pytest.approx(full["log_prob_target"] - full["log_prob_contrast"])
    assert report["masked"]["difference"] < full["difference"]
