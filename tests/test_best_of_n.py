"""Verified best-of-n selection on written responses: clusters by math equivalence, majority, CLR, no answer."""

from __future__ import annotations

import pytest

from vibethinker.serve.best_of_n import select_response
from vibethinker.serve.reasoning import ReasoningSplitter, prompt_opens_reasoning, split_reasoning


def _response(work: str, answer: str) -> str:
    return f"<think>\n{work}\n</think>\nThe answer is \\boxed{{{answer}}}."


def test_equivalent_answers_form_one_cluster_and_majority_picks_it():
    responses = [_response("1 + 1 = 2", "1/2"), _response("x", "0.5"), _response("y", "3"),
                 _response("z", "\\frac{1}{2}"), "<think>cut inside the reasoning", _response("w", "3")]
    selection = select_response(responses, "What is half of 1?", "majority")
    assert selection.index == 0 and selection.answer == "1/2"
    assert selection.agreement == pytest.approx(3 / 6) and selection.answered == 5
    assert [c["size"] for c in selection.clusters] == [3, 2]
    exact = select_response(responses, "q", "majority", domain="exact")  # strings only: 1/2 and 0.5 apart?
    assert sum(c["size"] for c in exact.clusters) == 5


def test_clr_prefers_the_cluster_whose_claims_check_out():
    # two samples say 12 with wrong arithmetic, one says 13 with every step right: majority 12, CLR 13
    wrong = _response("6 + 5 = 12.\n12 - 0 = 12.", "12")
    right = _response("6 + 7 = 13.\n13 - 0 = 13.", "13")
    responses = [wrong, wrong, right]
    assert select_response(responses, "What is 6 + 7?", "majority").answer == "12"
    clr = select_response(responses, "What is 6 + 7?", "clr")
    assert clr.answer == "13" and clr.index == 2 and clr.agreement == pytest.approx(1 / 3)
    # a wrong sample: one of its two claims holds, r = (1/2) ** 5; the right one: r = 1
    assert {c["answer"]: c["reliability"] for c in clr.clusters} == {"12": pytest.approx(2 / 32), "13": 1.0}
    assert clr.margin == pytest.approx((1 - 2 / 32) / (1 + 2 / 32))


def test_no_final_answer_selects_nothing():
    selection = select_response(["<think>no end", "no box here"], "q", "clr")
    assert selection.index is None and selection.answer is None and selection.agreement == 0.0


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7])
def test_the_stream_splitter_agrees_with_the_whole_text(cut):
    text = "<think>\nstep one </thi then </think>\nThe answer is 4 <think> kept"
    splitter = ReasoningSplitter()
    reasoning = answer = ""
    for start in range(0, len(text), cut):
        r, a = splitter.feed(text[start:start + cut])
        reasoning, answer = reasoning + r, answer + a
    r, a = splitter.finish()
    assert (reasoning + r, answer + a) == ("\nstep one </thi then ", "\nThe answer is 4 <think> kept")
    assert split_reasoning(text) == ("\nstep one </thi then ", "\nThe answer is 4 <think> kept")


def test_reasoning_opened_by_the_template_and_models_that_do_not_think():
    prompt = "<|im_start|>assistant\n<think>\n"
    assert prompt_opens_reasoning(prompt) and not prompt_opens_reasoning("<think>a</think> b")
    assert split_reasoning("a plan </think> 42", opened_in_prompt=True) == ("a plan ", " 42")
    assert split_reasoning("cut while thinking", opened_in_prompt=True) == ("cut while thinking", "")
    assert split_reasoning("just 42") == (None, "just 42")
