"""Word problems over two-digit numbers: traces verify, paths differ, stories decontaminate, selection is by name."""

from __future__ import annotations

import random
import re
import time

import pytest

from vibethinker.data.decontam import normalise
from vibethinker.data.records import load_problems
from vibethinker.data.synthetic import (ALL_SUBDOMAINS, DIFFICULTIES, MODULES, SUBDOMAINS, draft_problem,
                                        make_problem, module_for)
from vibethinker.data.synthetic.suite import SuiteConfig, generate_suite
from vibethinker.data.synthetic.word_problems import FOODS, ITEMS, NAMES, PATHS, TEMPLATES
from vibethinker.pipeline import stage_context
from vibethinker.recipe import Recipe, RecipeError
from vibethinker.stages.data import DataStage
from vibethinker.stages.data import run as run_data_stage
from vibethinker.verify import score

NAME = "word_arithmetic"
DEFAULT_FIVE = ("arithmetic", "linear_equations", "number_theory", "counting", "code_functions")
STEP = re.compile(r"^(\d+) ([+\-*]) (\d+) = (-?\d+)\.$")
KEY = re.compile(r"word:(\d+)([+\-*])(\d+)(?:([+\-])(\d+))?")
LEVEL_OPS = {1: [["+"]], 2: [["-"]], 3: [["+", "+"]], 4: [["+", "-"], ["-", "+"]], 5: [["*", "+"], ["*", "-"]]}
DRAWN_WORDS = {name.lower() for name, _ in NAMES} | set(ITEMS) | set(FOODS)


def _sample(difficulty: int, count: int = 60, seed: int = 0):
    rng = random.Random(f"{seed}/{NAME}/{difficulty}")
    return [make_problem(NAME, difficulty, rng, i) for i in range(count)]


def _steps(trace: str) -> list[tuple[int, str, int, int]]:
    lines = trace.split("</think>")[0].removeprefix("<think>\n").splitlines()
    assert lines[0].startswith("Plan: "), trace
    steps = []
    for line in lines[1:]:
        a, op, b, c = STEP.fullmatch(line).groups()
        steps.append((int(a), op, int(b), int(c)))
    return steps


def _evaluate_key(key: str) -> tuple[list[int], list[str], int]:
    groups = KEY.fullmatch(key).groups()
    numbers = [int(g) for g in groups[0::2] if g is not None]
    ops = [g for g in groups[1::2] if g is not None]
    total = numbers[0]
    for op, value in zip(ops, numbers[1:]):
        total = {"+": total + value, "-": total - value, "*": total * value}[op]
    return numbers, ops, total


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_every_difficulty_gives_verified_traces_on_two_different_paths(difficulty):
    for problem in _sample(difficulty):
        assert problem.domain == "math" and problem.subdomain == NAME and problem.difficulty == difficulty
        assert problem.problem.endswith("?") and "boxed" not in problem.problem
        assert problem.meta["paths"] == PATHS and len(problem.traces) == 2
        answer = int(problem.answer)
        assert 0 < answer < 1000
        numbers, ops, total = _evaluate_key(problem.meta["key"])
        assert total == answer and ops in LEVEL_OPS[difficulty], (problem.meta["key"], answer)
        operands = [n for i, n in enumerate(numbers) if not (ops[0] == "*" and i == 1)]
        assert all(11 <= n <= 99 and n % 10 for n in operands), numbers
        if ops[0] == "*":
            assert 2 <= numbers[1] <= 5
        assert sorted(map(int, re.findall(r"\d+", problem.problem))) == sorted(numbers), problem.problem
        step_lists = []
        for trace in problem.traces:
            assert trace.endswith(f"The answer is \\boxed{{{answer}}}.")
            assert score(problem, trace).correct, trace
            steps = _steps(trace)
            for a, op, b, c in steps:
                assert {"+": a + b, "-": a - b, "*": a * b}[op] == c, (a, op, b, c)
                assert 0 <= c < 1000, trace
            assert steps[-1][3] == answer
            step_lists.append(steps)
        first, second = step_lists
        assert len(first) == len(ops) and len(second) > len(first)
        assert {c for *_, c in second[:-1]} - {c for *_, c in first}, "the place-value path must pass other values"


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_every_template_is_drawn_and_each_10gram_holds_a_number_and_a_second_drawn_word(difficulty):
    rng, seen = random.Random(difficulty), set()
    for _ in range(300):
        draft = draft_problem(NAME, difficulty, rng)
        seen.add(draft.template)
        words = normalise(draft.question)
        for i in range(len(words) - 9):
            window = words[i:i + 10]
            numbers = sum(w.isdigit() for w in window)
            assert numbers >= 2 or (numbers == 1 and DRAWN_WORDS & set(window)), (draft.template, window)
    assert seen == {f"d{difficulty}_{name}" for name, _, _ in TEMPLATES[difficulty]}


def test_a_word_problem_suite_builds_fast_with_disjoint_keys():
    start = time.perf_counter()
    suite = generate_suite(SuiteConfig.uniform(seed=0, train=2000, probe=0, test=200, subdomains=(NAME,)))
    elapsed = time.perf_counter() - start
    train, test = suite.splits["train"], suite.splits["test"]
    assert (len(train), len(suite.splits["probe"]), len(test)) == (2000, 0, 200)
    assert {p.subdomain for p in train + test} == {NAME}
    assert not {p.meta["key"] for p in train} & {p.meta["key"] for p in test}
    assert suite.stats["dropped"]["decontam"].get("train", 0) < 100, suite.stats["dropped"]
    assert elapsed < 10, f"suite took {elapsed:.1f} s"


def test_word_problems_are_selectable_by_name_but_not_in_the_default_suite():
    assert SUBDOMAINS == DEFAULT_FIVE and tuple(MODULES) == DEFAULT_FIVE
    assert ALL_SUBDOMAINS == DEFAULT_FIVE + (NAME,)
    assert module_for(NAME).DOMAIN == "math"
    assert set(SuiteConfig().train) == set(DEFAULT_FIVE)
    with pytest.raises(KeyError, match="word_arithmetic"):
        draft_problem("word_problems_typo", 1, random.Random(0))


def _data_stage(tmp_path, subdomains: list[str]):
    stage = DataStage(name="data", kind="data", suite={"train_per_subdomain": 20, "probe_per_subdomain": 5,
                                                       "test_per_subdomain": 10, "subdomains": subdomains})
    recipe = Recipe(name="word", seed=1, stages=[stage])
    return stage, stage_context(recipe, tmp_path, "data")


def test_data_stage_accepts_word_arithmetic(tmp_path):
    stage, ctx = _data_stage(tmp_path, [NAME])
    result = run_data_stage(stage, ctx)
    assert result["sizes"] == {"test": 10, "probe": 5, "train": 20}
    problems = load_problems(tmp_path / "data" / "train.jsonl")
    assert {p.subdomain for p in problems} == {NAME} and all(p.traces for p in problems)


def test_data_stage_rejects_an_unknown_sub_domain_listing_the_known_ones(tmp_path):
    stage, ctx = _data_stage(tmp_path, [NAME, "poetry"])
    with pytest.raises(RecipeError) as error:
        run_data_stage(stage, ctx)
    assert "poetry" in str(error.value)
    assert all(name in str(error.value) for name in ALL_SUBDOMAINS)


def test_draws_are_seeded():
    def dump(seed):
        return [(p.problem, p.traces, p.meta["key"]) for d in DIFFICULTIES for p in _sample(d, 10, seed)]

    assert dump(3) == dump(3)
    assert dump(3) != dump(4)
