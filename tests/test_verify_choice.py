import pytest

from vibethinker.verify.choice import parse_choice, verify_choice


def resp(box: str) -> str:
    return f"<think>thinking</think> The answer is \\boxed{{{box}}}."


@pytest.mark.parametrize("box", ["B", "b", "(B)", "B.", "B)", "[B]", "\\text{B}", "\\textbf{B}", "\\text{(B)}",
                                 "$B$", " B ", "\\mathrm{B}", "(b)"])
def test_accepted_spellings(box):
    verdict = verify_choice(resp(box), "B")
    assert verdict.correct and verdict.verdict == "correct" and verdict.reward == 1.0


@pytest.mark.parametrize("box", ["A", "C", "A, B", "AB", "A or B", "B and C", "(B", "B)(C)", "the answer B", "42"])
def test_rejected(box):
    verdict = verify_choice(resp(box), "B")
    assert not verdict.correct and verdict.reward == 0.0 and verdict.verdict == "wrong"


def test_empty_and_missing():
    assert verify_choice(resp(""), "B").verdict == "no_answer"
    assert verify_choice(resp("  "), "B").verdict == "no_answer"
    assert verify_choice("<think>x</think> B", "B").verdict == "no_answer"
    # only inside the think block: does not count
    assert verify_choice("<think>\\boxed{B}</think> done", "B").verdict == "no_answer"
    # no </think> when required
    assert verify_choice("\\boxed{B}", "B").verdict == "no_answer"
    assert verify_choice("\\boxed{B}", "B", require_think=False).correct


def test_last_box_counts():
    assert not verify_choice("<think>x</think> \\boxed{B} no wait \\boxed{C}", "B").correct
    assert verify_choice("<think>x</think> \\boxed{C} no wait \\boxed{B}", "B").correct


def test_n_choices():
    assert verify_choice(resp("D"), "D", n_choices=4).correct
    verdict = verify_choice(resp("E"), "B", n_choices=4)
    assert not verdict.correct and "beyond" in verdict.detail
    assert not verify_choice(resp("J"), "J", n_choices=4).correct


def test_gold_forms():
    assert verify_choice(resp("c"), "(C)").correct
    assert verify_choice(resp("C"), "\\text{(C)}").correct
    with pytest.raises(ValueError):
        verify_choice(resp("A"), "A, B")


def test_parse_choice():
    assert parse_choice("\\textbf{(d)}") == "D"
    assert parse_choice("AB") is None
    assert parse_choice("") is None
