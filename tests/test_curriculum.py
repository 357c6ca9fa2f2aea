"""Curriculum SFT filters (SPEC 2.1 stage 2): long traces only, hard problems only, difficulty estimates cached."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from conftest import make_addition_problems, train_warm_model
from vibethinker.data.records import Problem
from vibethinker.generate import Completion, SamplingParams, make_generator
from vibethinker.model import load_tokenizer
from vibethinker.prompts import render_prompt
from vibethinker.sft.curriculum import (CurriculumConfig, apply_curriculum, filter_hard, filter_min_trace_tokens,
                                        response_tokens)
from vibethinker.sft.packing import tokenize_sample
from vibethinker.verify import score


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A tiny model SFT-trained on additions until it solves some of them some of the time."""
    root = tmp_path_factory.mktemp("curriculum-ref")
    problems = make_addition_problems(16, seed=0)
    train_warm_model(root, problems, epochs=40)
    return root / "sft" / "model", problems


def _problem(pid: str, traces: list[str]) -> Problem:
    return Problem(id=pid, domain="math", subdomain="addition", difficulty=1, problem="What is 2 + 3?", answer="5",
                   source="test", traces=traces)


def test_response_tokens_are_what_sft_trains_on(tiny_checkpoint):
    tokenizer = load_tokenizer(tiny_checkpoint)
    problem = make_addition_problems(1)[0]
    trace = problem.traces[0]
    count = response_tokens(tokenizer, problem, trace)
    assert count == tokenize_sample(tokenizer, problem, trace).n_response_tokens
    assert count == len(tokenizer(trace + "<|im_end|>", add_special_tokens=False)["input_ids"])


def test_min_trace_tokens_keeps_the_boundary_and_drops_traceless_problems(tiny_checkpoint):
    tokenizer = load_tokenizer(tiny_checkpoint)
    short = "<think>\n2 + 3 = 5.\n</think>\nThe answer is \\boxed{5}."
    middle = "<think>\n2 + 3 = 5. Check: 5 - 3 = 2.\n</think>\nThe answer is \\boxed{5}."
    long = "<think>\n2 + 3 = 5. Check: 5 - 3 = 2. Check again: 5 - 2 = 3.\n</think>\nThe answer is \\boxed{5}."
    problems = [_problem("mixed", [short, middle, long]), _problem("short-only", [short]), _problem("none", [])]
    lengths = [response_tokens(tokenizer, problems[0], t) for t in (short, middle, long)]
    assert lengths[0] < lengths[1] < lengths[2]
    kept, report = filter_min_trace_tokens(problems, tokenizer, lengths[1])
    assert [p.id for p in kept] == ["mixed"]
    assert kept[0].traces == [middle, long]  # exactly min_tokens is long enough
    assert problems[0].traces == [short, middle, long]  # the input is not modified
    assert report["dropped_problems"] == ["short-only", "none"]
    assert (report["traces_in"], report["traces_kept"], report["problems_kept"]) == (4, 2, 1)
    assert report["trace_tokens"]["max"] == lengths[2]
    kept, _ = filter_min_trace_tokens(problems, tokenizer, lengths[1] + 1)
    assert kept[0].traces == [long]


class ScriptedGenerator:
    """Answers problem ``p<k>`` correctly in its first ``right[k]`` samples; a stand-in with known outcomes."""

    def __init__(self, tokenizer, right: list[int]):
        self.tokenizer, self.right, self.calls = tokenizer, right, 0

    def generate(self, prompts, sampling):
        self.calls += 1
        out = []
        for pi, prompt in enumerate(prompts):
            index = next(i for i in range(len(self.right)) if f"What is {i} + 1?" in prompt)
            for si in range(sampling.n):
                value = index + 1 if si < self.right[index] else -1
                out.append(Completion(pi, si, [1], f"<think>x</think> \\boxed{{{value}}}", [0.0], "stop"))
        return out


def test_hard_filter_keeps_error_rates_from_three_quarters_up(tmp_path, tiny_checkpoint):
    right = [0, 1, 2, 3, 8]  # error rates 1, 7/8, 6/8 (= 0.75, kept), 5/8, 0
    problems = [Problem(id=f"p{i}", domain="math", subdomain="a", difficulty=1, problem=f"What is {i} + 1?",
                        answer=str(i + 1), source="test") for i in range(len(right))]
    tokenizer = load_tokenizer(tiny_checkpoint)
    loads = []

    def factory(path):
        loads.append(path)
        return ScriptedGenerator(tokenizer, right)

    cache = tmp_path / "difficulty.jsonl"
    kept, report = filter_hard(problems, tiny_checkpoint, 8, 0.75, SamplingParams(max_new_tokens=8, seed=0), cache,
                               chunk_problems=2, generator_factory=factory)
    assert [p.id for p in kept] == ["p0", "p1", "p2"]
    assert report["dropped_easy"] == ["p3", "p4"]
    assert report["error_rate"] == {"p0": 1.0, "p1": 0.875, "p2": 0.75, "p3": 0.625, "p4": 0.0}
    assert len(loads) == 1 and report["reference_loaded"] and report["cache_hits"] == 0
    again, report2 = filter_hard(problems, tiny_checkpoint, 8, 0.75, SamplingParams(max_new_tokens=8, seed=0), cache,
                                 generator_factory=factory)
    assert len(loads) == 1 and not report2["reference_loaded"] and report2["cache_hits"] == 5
    assert again == kept
    filter_hard(problems, tiny_checkpoint, 8, 0.75, SamplingParams(max_new_tokens=8, seed=1), cache,
                generator_factory=factory)
    assert len(loads) == 2  # other sampling settings: sampled again


def test_hard_filter_with_a_trained_reference_matches_its_own_rollouts(tmp_path, reference):
    model_dir, train_problems = reference
    problems = [train_problems[i] for i in (2, 3, 4, 5, 9, 10, 13, 14)]
    sampling = SamplingParams(max_new_tokens=40, seed=7, n=8)
    loads = []

    def factory(path):
        loads.append(path)
        return make_generator(path, device="cpu")

    cache = tmp_path / "difficulty.jsonl"
    kept, report = filter_hard(problems, model_dir, 8, 0.75, sampling, cache, generator_factory=factory)
    generator = make_generator(model_dir, device="cpu")  # the same rollouts, graded here independently
    completions = generator.generate([render_prompt(generator.tokenizer, p) for p in problems], sampling)
    for index, problem in enumerate(problems):
        group = completions[index * 8:(index + 1) * 8]
        wrong = sum(c.finish_reason == "length" or not score(problem, c.text).correct for c in group)
        assert report["error_rate"][problem.id] == pytest.approx(wrong / 8)
    assert [p.id for p in kept] == [p.id for p in problems if report["error_rate"][p.id] >= 0.75]
    assert kept and report["dropped_easy"]  # the reference solves some problems often, others rarely
    again, _ = filter_hard(problems, model_dir, 8, 0.75, sampling, cache, generator_factory=factory)
    assert again == kept and len(loads) == 1


def test_apply_curriculum_filters_length_then_difficulty(tmp_path, reference):
    model_dir, train_problems = reference
    tokenizer = load_tokenizer(model_dir)
    lengths = sorted(response_tokens(tokenizer, p, t) for p in train_problems for t in p.traces)
    config = CurriculumConfig(min_trace_tokens=lengths[len(lengths) // 2], difficulty_reference=str(model_dir),
                              max_new_tokens=40, seed=7, device="cpu")
    kept, report = apply_curriculum(train_problems, config, tokenizer, tmp_path / "cache")
    by_length = report["trace_length"]
    assert 0 < by_length["problems_kept"] < len(train_problems)
    assert report["difficulty"]["problems_in"] == by_length["problems_kept"]  # only length survivors are sampled
    assert report["problems_kept"] == len(kept) == report["difficulty"]["problems_kept"]
    assert (tmp_path / "cache" / "difficulty_cache.jsonl").exists()
    assert all(report["difficulty"]["error_rate"][p.id] >= 0.75 for p in kept)
    assert all(min(response_tokens(tokenizer, p, t) for t in p.traces) >= config.min_trace_tokens for p in kept)
    off, report_off = apply_curriculum(train_problems, CurriculumConfig(min_trace_tokens=0), tokenizer, tmp_path)
    assert off == train_problems and report_off["trace_length"] is None and report_off["difficulty"] is None


def test_curriculum_config_defaults_follow_the_spec():
    config = CurriculumConfig()
    assert (config.min_trace_tokens, config.difficulty_rollouts, config.min_error_rate) == (5000, 8, 0.75)
    assert config.sampling_params().n == 8
    with pytest.raises(ValidationError):
        CurriculumConfig(difficulty_rollouts=1)
    with pytest.raises(ValidationError):
        CurriculumConfig(min_error_rate=0.75, typo=1)
