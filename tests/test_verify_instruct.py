"""IFEval-style rule validators: every kind passes and fails, parameter errors, partial credit, think-block hygiene."""

from __future__ import annotations

import pytest

from vibethinker.verify.instruct import (
    CONSTRAINTS,
    PARAMS,
    check_constraint,
    describe,
    validate_constraints,
    verify_instruct,
)


def ok(kind: str, text: str, **params) -> bool:
    return CONSTRAINTS[kind](text, **params)


def test_registry_matches_params():
    assert set(CONSTRAINTS) == set(PARAMS)
    assert {"word_count", "sentence_count", "paragraph_count", "keywords", "forbidden_words", "json_format",
            "bullet_count", "letter_case", "start_phrase", "end_phrase", "sections", "letter_frequency",
            "placeholders"} <= set(CONSTRAINTS)


def test_word_count_punctuation_spaces_unicode():
    text = "Hello,   world!  Don't   stop -- well-known  café, naïve… 42."
    # Hello world Don't stop well-known café naïve 42 -> 8 words; "--" and "…" are not words
    assert ok("word_count", text, n=8, relation="exactly")
    assert not ok("word_count", text, n=9, relation="exactly")
    assert ok("word_count", text, n=8, relation="at least")
    assert not ok("word_count", text, n=7, relation="at_most")
    assert ok("word_count", text, n=9, relation="less_than")
    assert not ok("word_count", text, n=8, relation="more_than")
    assert ok("word_count", "数学 很 好", n=3, relation="exactly")
    assert ok("word_count", "one two  \n\n  ", n=2, relation="exactly")


def test_sentence_count():
    text = "First one. Second one!! Is this third? pi is 3.14 here. trailing fragment"
    assert ok("sentence_count", text, n=5, relation="exactly")
    assert not ok("sentence_count", text, n=6)
    assert ok("sentence_count", "Just one.   ", n=1, relation="exactly")
    assert not ok("sentence_count", "... !!! ?", n=1)


def test_paragraph_count_blank_lines():
    text = "Para one line one.\nline two.\n\nPara two.\n   \n\n\nPara three.\n"
    assert ok("paragraph_count", text, n=3)
    assert not ok("paragraph_count", text, n=2)
    assert not ok("paragraph_count", "Para one.\nSame paragraph.", n=2)


def test_paragraph_count_ifeval_stars():
    text = "First.\n\n***\n\nSecond.\n***\nThird."
    assert ok("paragraph_count", text, n=3, separator="***")
    assert ok("paragraph_count", "One.\n***\nTwo.\n***\nThree.", n=3, separator="***")
    assert ok("paragraph_count", "One.\n***\nTwo.\n***\nThree.", n=1)  # no blank line: one paragraph
    assert not ok("paragraph_count", "First.\n***\n***\nThird.", n=2, separator="***")  # empty inner paragraph
    assert ok("paragraph_count", "First.\n***\nSecond.\n***", n=2, separator="***")  # trailing marker allowed


def test_keywords_whole_words_case_insensitive():
    text = "The Cat sat. A cat, a CAT! Cats and concatenate don't count; the big dog barked."
    assert ok("keywords", text, keywords=["cat"], min_count=3)
    assert not ok("keywords", text, keywords=["cat"], min_count=4)
    assert ok("keywords", text, keywords=["cat", "big  dog"])  # phrase, flexible whitespace
    assert not ok("keywords", text, keywords=["cat", "bird"])
    assert not ok("keywords", "concatenate", keywords="cat")
    assert ok("keywords", "Ünïcode ÜNÏCODE", keywords=["ünïcode"], min_count=2)


def test_forbidden_words():
    assert ok("forbidden_words", "Scattered cats everywhere.", words=["cat", "dog"])
    assert not ok("forbidden_words", "A dog, (DOG).", words=["cat", "dog"])


def test_json_format():
    assert ok("json_format", '  {"a": [1, 2], "b": null}\n')
    assert ok("json_format", '```json\n{"a": 1}\n```')
    assert ok("json_format", '```JSON\n[1, 2]```\n')
    assert ok("json_format", '```\n{"a": 1}\n```')
    assert not ok("json_format", '```json\n{"a": 1}\n```', allow_fence=False)
    assert not ok("json_format", 'Here it is: {"a": 1}')
    assert not ok("json_format", '{"a": 1} trailing')
    assert not ok("json_format", '```json\n{"a": 1,}\n```')
    assert not ok("json_format", '```json\n{"a": 1}\n```\nmore text')


def test_bullet_count_nested():
    text = "Intro\n* one\n- two\n  * nested a\n    - nested b\n* three\n***\n---\n*emphasis*\n-5 degrees"
    assert ok("bullet_count", text, n=3)
    assert not ok("bullet_count", text, n=4)
    assert ok("bullet_count", text, n=5, include_nested=True)
    assert ok("bullet_count", "no bullets here", n=0)
    assert ok("bullet_count", "* a\n* b", n=1, relation="more_than")


def test_letter_case():
    assert ok("letter_case", "all lower, with digits 123 and ünïcode.", case="lower")
    assert not ok("letter_case", "One Capital", case="lower")
    assert ok("letter_case", "ALL UPPER! ÉCOLE 42", case="upper")
    assert not ok("letter_case", "ALMOST uPPER", case="upper")
    assert not ok("letter_case", "1234 !!", case="lower")  # no letters at all


def test_start_and_end_phrase():
    text = "\n  My answer is yes. Is there anything else I can help with?  \n\n"
    assert ok("start_phrase", text, phrase="My answer is")
    assert not ok("start_phrase", text, phrase="my answer is")
    assert ok("start_phrase", text, phrase="  my answer is", ignore_case=True)
    assert ok("end_phrase", text, phrase="Is there anything else I can help with?")
    assert not ok("end_phrase", text, phrase="Is there anything else I can help with")
    assert ok("end_phrase", text, phrase="HELP WITH?\n", ignore_case=True)


def test_sections():
    text = "SECTION 1\nIntro\nSECTION 2\nBody\nsection 3 lowercase\nXSECTION 4"
    assert ok("sections", text, n=2, splitter="SECTION", relation="exactly")
    assert not ok("sections", text, n=3, splitter="SECTION")
    assert ok("sections", "Section 1: a. Section 2: b. Section 3: c.", n=3)
    assert not ok("sections", "Section one, Section two", n=1)


def test_letter_frequency_and_placeholders():
    assert ok("letter_frequency", "Banana bread", letter="a", n=4, relation="exactly")
    assert not ok("letter_frequency", "Banana bread", letter="A", n=5)
    assert ok("placeholders", "Send it to [name] at [address].", n=2)
    assert not ok("placeholders", "Send it to [name].", n=2)
    assert not ok("placeholders", "No [ brackets\n] across lines", n=1)


@pytest.mark.parametrize("constraint, words", [
    ({"kind": "nope"}, ["unknown constraint kind", "'nope'"]),
    ({"kind": "word_count"}, ["'word_count'", "'n'", "required"]),
    ({"kind": "word_count", "n": -1}, ["'word_count'", "'n'", "non-negative"]),
    ({"kind": "word_count", "n": True}, ["'word_count'", "'n'"]),
    ({"kind": "word_count", "n": "5"}, ["'word_count'", "'n'"]),
    ({"kind": "word_count", "n": 5, "relation": "about"}, ["'word_count'", "'relation'"]),
    ({"kind": "word_count", "n": 5, "limit": 3}, ["'word_count'", "'limit'", "not accepted"]),
    ({"kind": "keywords", "keywords": []}, ["'keywords'", "non-empty list"]),
    ({"kind": "keywords", "keywords": ["ok", ""]}, ["'keywords'"]),
    ({"kind": "forbidden_words", "words": [3]}, ["'forbidden_words'", "'words'"]),
    ({"kind": "letter_case", "case": "title"}, ["'letter_case'", "'case'"]),
    ({"kind": "paragraph_count", "n": 2, "separator": "---"}, ["'paragraph_count'", "'separator'"]),
    ({"kind": "json_format", "allow_fence": "yes"}, ["'json_format'", "'allow_fence'"]),
    ({"kind": "start_phrase", "phrase": "   "}, ["'start_phrase'", "'phrase'"]),
    ({"kind": "letter_frequency", "letter": "ab", "n": 1}, ["'letter_frequency'", "'letter'"]),
    ({"n": 3}, ["'kind'"]),
])
def test_bad_constraints_raise(constraint, words):
    with pytest.raises(ValueError) as err:
        validate_constraints([constraint])
    for word in words:
        assert word in str(err.value)
    with pytest.raises(ValueError):
        verify_instruct("<think>x</think>answer", [constraint])


def test_registry_callable_validates_params():
    with pytest.raises(ValueError, match="'bullet_count'.*'n'"):
        CONSTRAINTS["bullet_count"]("* a")
    with pytest.raises(ValueError, match="'sections'.*'splitter'"):
        CONSTRAINTS["sections"]("Section 1", n=1, splitter=7)


def test_partial_credit_arithmetic():
    response = "<think>plan</think>\nhello world, this is lowercase.\n"
    constraints = [
        {"kind": "letter_case", "case": "lower"},           # pass
        {"kind": "word_count", "n": 5, "relation": "exactly"},  # pass
        {"kind": "keywords", "keywords": ["banana"]},        # fail
        {"kind": "json_format"},                              # fail
    ]
    v = verify_instruct(response, constraints)
    assert v.reward == pytest.approx(0.5) and not v.correct and v.verdict == "wrong"
    assert "keywords" in v.detail and "json_format" in v.detail and "letter_case" not in v.detail
    assert v.answer == "hello world, this is lowercase."
    strict = verify_instruct(response, constraints, partial_credit=False)
    assert strict.reward == 0.0 and strict.verdict == "wrong"
    three = verify_instruct(response, constraints[:3])
    assert three.reward == pytest.approx(2 / 3)
    full = verify_instruct(response, constraints[:2], partial_credit=False)
    assert full.correct and full.reward == 1.0 and full.verdict == "correct" and full.detail == ""


def test_think_block_ignored_and_no_answer():
    constraints = [{"kind": "keywords", "keywords": ["pineapple"]}]
    hidden = "<think>I must say pineapple.</think>\nSure, here is my reply."
    v = verify_instruct(hidden, constraints)
    assert not v.correct and v.reward == 0.0 and v.verdict == "wrong"
    assert verify_instruct(hidden.replace("reply", "pineapple reply"), constraints).correct
    # forbidden word inside the think block does not hurt
    assert verify_instruct("<think>dog</think>cats only", [{"kind": "forbidden_words", "words": ["dog"]}]).correct
    for bad in ["no think tag, pineapple", "<think>pineapple</think>   \n"]:
        missing = verify_instruct(bad, constraints)
        assert missing.verdict == "no_answer" and missing.reward == 0.0 and missing.answer is None
    assert verify_instruct("pineapple", constraints, require_think=False).correct


def test_check_constraint_and_describe():
    c = {"kind": "word_count", "n": 2, "relation": "at_most"}
    assert check_constraint("two words", c) and not check_constraint("three words here", c)
    assert describe(c) == "word_count(n=2, relation='at_most')"
    with pytest.raises(ValueError, match="at least one constraint"):
        verify_instruct("<think></think>x", [])
