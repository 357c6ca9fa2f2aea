"""Word n-gram decontamination: normalisation, short-text grams, overlaps caught, near misses kept."""

from __future__ import annotations

import pytest

from vibethinker.data.decontam import assert_disjoint, build_index, decontaminate, ngrams, normalise
from vibethinker.data.records import Problem

LONG = "A farmer has 17 sheep and buys 25 more on each of the 3 market days of the week"


def _p(pid: str, text: str, **extra) -> Problem:
    return Problem(id=pid, domain="math", subdomain="t", difficulty=1, problem=text, answer="1", source="test",
                   **extra)


def test_normalise_lowercases_and_drops_punctuation_and_symbols():
    assert normalise("Solve 3*x + 5 = 2x, for X!") == ["solve", "3", "x", "5", "2x", "for", "x"]
    assert normalise("Café — naïve’s ≤ 5 $\\boxed{7}$") == ["café", "naïve", "s", "5", "boxed", "7"]
    assert normalise("count_9_to_24(nums)") == ["count", "9", "to", "24", "nums"]
    assert normalise("  \n\t ") == []


def test_ngrams_of_long_and_short_texts():
    words = normalise(LONG)
    grams = ngrams(words, 10)
    assert len(grams) == len(words) - 9 and all(len(g) == 10 for g in grams)
    assert ngrams(["find", "gcd", "84", "60"], 10) == {("find", "gcd", "84", "60")}
    assert ngrams([], 10) == set()
    with pytest.raises(ValueError):
        ngrams(words, 0)


def test_build_index_accepts_strings_mapping_and_pairs():
    by_position = build_index([LONG, "short text"])
    assert by_position.find("short text!")[1] == 1
    by_label = build_index({"q7": LONG})
    gram, label = by_label.find("Note: " + LONG.upper() + ", sadly.")
    assert label == "q7" and gram == tuple(normalise(LONG)[:10])
    assert build_index([("x", "short text")]).find("short  TEXT") == (("short", "text"), "x")


def test_crafted_overlap_is_caught_and_reported():
    eval_sets = {"aime": [_p("aime-1", LONG)]}
    window = " ".join(normalise(LONG)[4:14])  # exactly 10 words of the eval problem, formatting changed
    train = [_p("t-1", f"Warm-up. {window.upper()}!! Then what?"), _p("t-2", "Something else entirely, 17 sheep.")]
    result = decontaminate(train, eval_sets)
    assert [p.id for p in result.kept] == ["t-2"]
    (drop,) = result.dropped
    assert (drop.problem_id, drop.eval_set, drop.eval_id) == ("t-1", "aime", "aime-1")
    assert drop.gram == tuple(window.split()) and "aime:aime-1" in drop.describe()
    assert result.summary() == {"kept": 1, "dropped": 1, "by_eval_set": {"aime": 1}}


def test_near_miss_is_not_caught():
    words = normalise(LONG)
    changed = list(words)
    changed[5::5] = ["X"] * len(changed[5::5])  # every window of 10 words now differs in at least one word
    nine_words = " ".join(words[:9])  # shorter than n: its single gram is the whole 9-word tuple, not in the eval
    result = decontaminate([_p("t-1", " ".join(changed)), _p("t-2", nine_words)], {"eval": [_p("e-1", LONG)]})
    assert [p.id for p in result.kept] == ["t-1", "t-2"] and result.dropped == []


def test_short_identical_problems_match():
    eval_sets = {"suite": [_p("e-1", "Find gcd(84, 60).")]}
    result = decontaminate([_p("t-1", "find GCD 84, 60"), _p("t-2", "Find gcd(84, 61).")], eval_sets)
    assert [d.problem_id for d in result.dropped] == ["t-1"] and [p.id for p in result.kept] == ["t-2"]


def test_trace_fields_can_be_checked():
    leaked = _p("t-1", "An unrelated question about 3 cats.", traces=[f"<think>\nRecall: {LONG}\n</think>\nok"])
    eval_sets = {"eval": [_p("e-1", LONG)]}
    assert decontaminate([leaked], eval_sets).dropped == []
    result = decontaminate([leaked], eval_sets, fields=("problem", "traces"))
    assert result.dropped[0].field == "traces"


def test_assert_disjoint_names_both_problems_and_the_gram():
    splits = {"train": [_p("tr-1", LONG), _p("tr-2", "Find gcd(84, 60).")],
              "test": [_p("te-1", "Compute 3 * (4 + 5)."), _p("te-2", "find gcd 84 60")]}
    with pytest.raises(ValueError, match=r"'tr-2' \(train\) and 'te-2' \(test\) share the 10-gram 'find gcd 84 60'"):
        assert_disjoint(splits)
    splits["test"].pop()
    assert_disjoint(splits)
    assert_disjoint({"train": [_p("a", LONG), _p("b", LONG)]})  # repeats inside one split are not its business
