import pytest

from promptxray.errors import UnknownGranularityError
from promptxray.segments import (
    GRANULARITIES,
    Granularity,
    Unit,
    check_granularity,
    group_units,
    locate_token,
    segment,
)

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
    units, owner = group_units(base, lambda role, turn: text, "sentence")
    assert [u.text for u in units] == ["Hi there.", "Bye now."]
    assert owner == [0, 0, 0, 1, 1, 1]
    assert sorted(t for u in units for t in u.tokens) == list(range(6))


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Dr. Smith arrived at 5 p.m. today.", ["Dr. Smith arrived at 5 p.m. today."]),
        ("See e.g. the docs.", ["See e.g. the docs."]),
        ("Pi is 3.14. It is irrational.", ["Pi is 3.14.", "It is irrational."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("1. Buy milk.\n2. Buy eggs.", ["1. Buy milk.", "2. Buy eggs."]),
        ("No end mark\n\nNew paragraph", ["No end mark", "New paragraph"]),
        ("See e.g.\n \nthe docs.", ["See e.g.", "the docs."]),
        ("One. Two\n\n\nThree. Four", ["One.", "Two", "Three.", "Four"]),
        ("  Lead space. Trail space.  ", ["Lead space.", "Trail space."]),
    ],
)
def test_sentences_by_a_maintained_splitter(text, sentences):
    assert _texts("sentence", text=text) == sentences
    segs = segment(text, "sentence")
    assert "".join(text[s.cover[0] : s.cover[1]] for s in segs) == text
    assert segs[0].cover[0] == 0 and segs[-1].cover[1] == len(text)


def test_pysbd_ends_a_sentence_at_a_newline_inside_a_paragraph():
    # Not our rule: pysbd ends a sentence at every newline (the old regex did too).
    assert _texts("sentence", text="Hello\nworld.") == ["Hello", "world."]
    assert _texts("paragraph", text="Hello\nworld.") == ["Hello\nworld."]


def test_pysbd_placeholder_characters_in_the_text_lose_nothing():
    # pysbd alone returns only ["Go."] here: it uses \u261d internally.
    assert _texts("sentence", text="I \u261d you. Go.") == ["I \u261d you.", "Go."]
    assert _texts("sentence", text="\u0238\n\t\n  \u222fSmith went. Hi.") == [
        "\u0238",
        "\u222fSmith went.",
        "Hi.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Plain.",
        "  Leading. And trailing.  \n",
        "\n\nDr. Who?\r\nYes.\n\n\n  Next para.\tEnd.\n",
        "Hi.   Three spaces. \u00a0Nbsp. 1. Buy 2. Sell",
        TEXT,
    ],
)
def test_sentence_segments_partition_the_text(text):
    segs = segment(text, "sentence")
    if not text:
        assert segs == []
        return
    assert segs[0].cover[0] == 0 and segs[-1].cover[1] == len(text)
    for a, b in zip(segs, segs[1:], strict=False):
        assert a.cover[1] == b.cover[0]
    assert "".join(text[s.cover[0] : s.cover[1]] for s in segs) == text
    if not text.strip():  # as at every granularity: one unit, the whole text
        assert segs == [segment(text, "word")[0]] and segs[0].cover == (0, len(text))
        return
    for s in segs:
        piece = text[s.span[0] : s.span[1]]
        assert piece and piece == piece.strip()
        assert s.cover[0] <= s.span[0] < s.span[1] <= s.cover[1]
        assert not text[s.cover[0] : s.span[0]].strip()  # a cover adds only whitespace...
        assert not text[s.span[1] : s.cover[1]].strip()  # ...and the last one trailing space


def test_granularity_enum_and_public_tuple():
    assert GRANULARITIES == ("token", "word", "sentence", "line", "paragraph", "turn")
    assert all(type(g) is str for g in GRANULARITIES)
    assert [g.value for g in Granularity] == [*GRANULARITIES, "regex"]
    assert Granularity.SENTENCE == "sentence" and Granularity("regex") is Granularity.REGEX
    assert _texts(Granularity.SENTENCE, text="Hi. Bye.") == ["Hi.", "Bye."]
    with pytest.raises(UnknownGranularityError, match="needs a pattern"):
        check_granularity("regex")
    with pytest.raises(
        UnknownGranularityError,
        match=r"Unknown granularity 'chapter'; choose one of "
        r"token, word, sentence, line, paragraph, turn, regex\.",
    ):
        check_granularity("chapter")
