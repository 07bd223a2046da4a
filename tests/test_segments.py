import pytest

from promptxray.errors import UnknownGranularityError
from promptxray.segments import Unit, group_units, locate_token, segment

TEXT = "Hello world. How are you?\nFine thanks!\n\nNew paragraph here."


def _texts(granularity, pattern=None, text=TEXT):
    return [text[s.span[0] : s.span[1]] for s in segment(text, granularity, pattern)]


def test_words_sentences_lines_paragraphs():
    assert _texts("word")[:3] == ["Hello", "world.", "How"]
    assert _texts("sentence") == [
        "Hello world.",
        "How are you?",
        "Fine thanks!",
        "New paragraph here.",
    ]
    assert _texts("line") == ["Hello world. How are you?", "Fine thanks!", "New paragraph here."]
    assert _texts("paragraph") == [
        "Hello world. How are you?\nFine thanks!",
        "New paragraph here.",
    ]


def test_decimal_point_does_not_end_a_sentence():
    assert _texts("sentence", text="It costs 3.50 dollars. Cheap.") == [
        "It costs 3.50 dollars.",
        "Cheap.",
    ]


def test_covers_partition_the_text():
    for granularity in ("word", "sentence", "line", "paragraph"):
        segs = segment(TEXT, granularity)
        assert segs[0].cover[0] == 0 and segs[-1].cover[1] == len(TEXT)
        for a, b in zip(segs, segs[1:], strict=False):
            assert a.cover[1] == b.cover[0]


def test_regex_keeps_unmatched_text_as_units():
    assert _texts("regex", r"\d+", text="call 555 now 12") == ["call", "555", "now", "12"]


def test_leading_space_token_belongs_to_following_word():
    segs = segment("What color is", "word")
    assert locate_token(segs, "What color is", (4, 10)) == 1  # " color"


def test_bad_granularity_and_pattern():
    with pytest.raises(UnknownGranularityError):
        segment(TEXT, "chapter")
    with pytest.raises(UnknownGranularityError):
        segment(TEXT, "regex", "(")


def test_group_units_keeps_every_token():
    text = "Hi there. Bye now."
    base = [
        Unit(text[a:b], "user", (a, b), [i])
        for i, (a, b) in enumerate([(0, 2), (2, 8), (8, 9), (9, 13), (13, 17), (17, 18)])
    ]
    units, owner = group_units(base, lambda role: text, "sentence")
    assert [u.text for u in units] == ["Hi there.", "Bye now."]
    assert owner == [0, 0, 0, 1, 1, 1]
    assert sorted(t for u in units for t in u.tokens) == list(range(6))
