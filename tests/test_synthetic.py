"""The synthetic suite: every trace verifies, traces take different paths, splits are clean, balanced and seeded."""

from __future__ import annotations

import ast
import json
import random
import re
import statistics
import time
from collections import Counter

import pytest

from vibethinker.data.decontam import assert_disjoint
from vibethinker.data.records import load_problems
from vibethinker.data.synthetic import DIFFICULTIES, MODULES, SUBDOMAINS, draft_problem, make_problem
from vibethinker.data.synthetic.code_functions import TEMPLATES as CODE_TEMPLATES
from vibethinker.data.synthetic.suite import SuiteConfig, SuiteError, generate_suite, write_suite
from vibethinker.verify import score

MATH = [name for name in SUBDOMAINS if MODULES[name].DOMAIN == "math"]
PER_CELL = 40
STEP = re.compile(r"(?<![\w(])(-?\d+) (\+|-|\*|//|/|mod) (-?\d+) = (-?\d+)(?![\w(])")  # ``a op b = c``
LIMIT = 99  # the largest |number| in a math trace
COUNTING_EXCEPTIONS: dict[str, int] = {}  # counting template -> larger bound; none is needed (see counting.py)
QUESTION_MAX = {"arithmetic": 9, "linear_equations": 30, "number_theory": 60, "counting": 60}
OPS_CHECK = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a // b,
             "//": lambda a, b: a // b, "mod": lambda a, b: a % b}


def _think(trace: str) -> str:
    return trace.split("</think>")[0].removeprefix("<think>\n")


def _numbers(trace: str) -> list[int]:
    return [int(x) for x in re.findall(r"-?\d+", _think(trace))]


def _steps(trace: str) -> list[tuple[int, str, int, int]]:
    return [(int(a), op, int(b), int(c)) for a, op, b, c in STEP.findall(_think(trace))]


def _easy_product(a: int, b: int) -> bool:
    low, high = sorted((abs(a), abs(b)))
    return low <= 9 and (high <= 9 or low <= 5)


def _sample(subdomain: str, difficulty: int, count: int = PER_CELL, seed: int = 0):
    rng = random.Random(f"{seed}/{subdomain}/{difficulty}")
    return [make_problem(subdomain, difficulty, rng, i) for i in range(count)]


@pytest.fixture(scope="module")
def default_suite():
    start = time.perf_counter()
    suite = generate_suite(SuiteConfig())
    return suite, time.perf_counter() - start


@pytest.mark.parametrize("subdomain", MATH)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_math_traces_verify_and_end_in_the_answer(subdomain, difficulty):
    for problem in _sample(subdomain, difficulty):
        assert problem.domain == "math" and problem.source == "synthetic"
        assert re.fullmatch(rf"{subdomain}-d{difficulty}-\d{{6}}", problem.id)
        assert "boxed" not in problem.problem and "step by step" not in problem.problem
        assert len(problem.traces) >= 2 and len(problem.meta["paths"]) == len(problem.traces)
        assert re.fullmatch(r"-?\d+", problem.answer)
        for trace in problem.traces:
            assert trace.startswith("<think>\n") and "\n</think>\n" in trace
            assert trace.endswith(f"The answer is \\boxed{{{problem.answer}}}.")
            assert score(problem, trace).correct, trace
            assert len(_think(trace)) <= 300, "traces must stay short enough for a tiny model"


@pytest.mark.parametrize("subdomain", MATH)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_math_steps_stay_on_a_small_fact_table(subdomain, difficulty):
    seen = 0
    for problem in _sample(subdomain, difficulty):
        template = problem.meta["template"]
        limit = COUNTING_EXCEPTIONS.get(template, LIMIT) if subdomain == "counting" else LIMIT
        assert max(abs(n) for n in map(int, re.findall(r"\d+", problem.problem))) <= QUESTION_MAX[subdomain]
        for trace in problem.traces:
            assert all(abs(n) <= limit for n in _numbers(trace)), trace
            for a, op, b, c in _steps(trace):
                seen += 1
                assert OPS_CHECK[op](a, b) == c, (a, op, b, c)
                assert max(abs(a), abs(b), abs(c)) <= limit, (a, op, b, c)
                if op == "*":
                    assert _easy_product(a, b), f"{a} * {b} is off the small table"
                elif op in ("/", "//"):
                    assert 2 <= abs(b) <= (5 if op == "//" else 9), (a, op, b, c)
                elif op == "mod":
                    if template == "gcd":  # Euclid: inputs at most 60, so its remainders stay small
                        assert 2 <= b < a <= 60, (a, op, b, c)
                    else:
                        assert 3 <= b <= 9, (a, op, b, c)
        if template == "remainder":
            expression, modulus = re.fullmatch(r"Find the remainder when (.+) is divided by (\d+)\.",
                                               problem.problem).groups()
            assert 3 <= int(modulus) <= 9 and max(map(int, re.findall(r"\d+", expression))) <= 30
    assert seen >= 2 * PER_CELL, "the step pattern must see the trace lines"


@pytest.mark.parametrize("subdomain", MATH)
def test_small_numbers_still_leave_many_distinct_problems(subdomain):
    for difficulty in DIFFICULTIES:
        rng = random.Random(f"keys/{subdomain}/{difficulty}")
        drafts = [draft_problem(subdomain, difficulty, rng) for _ in range(600)]
        assert len({d.key for d in drafts}) >= 100, (subdomain, difficulty)
        assert len({d.question for d in drafts}) >= 200, (subdomain, difficulty)


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_code_traces_pass_their_tests_for_every_template(difficulty):
    rng, seen = random.Random(difficulty), {}
    wanted = {t.name.split("_{")[0] for t in CODE_TEMPLATES[difficulty]}
    while set(seen) != wanted:
        problem = make_problem("code_functions", difficulty, rng)
        seen.setdefault(problem.meta["template"], problem)
    for problem in seen.values():
        assert problem.domain == "code" and 3 <= len(problem.tests) <= 5
        for trace in problem.traces:
            assert trace.rstrip().endswith("```") and "```python\n" in trace.split("</think>")[1]
            assert score(problem, trace).correct, trace


@pytest.mark.parametrize("subdomain", SUBDOMAINS)
def test_traces_of_one_problem_take_different_paths(subdomain):
    for difficulty in DIFFICULTIES:
        for problem in _sample(subdomain, difficulty, count=20, seed=1):
            assert len(set(problem.meta["paths"])) == len(problem.traces)
            if problem.domain == "code":
                programs = [t.split("```python\n")[-1].split("```")[0] for t in problem.traces]
                assert len({ast.dump(ast.parse(p)) for p in programs}) == len(programs)
            else:
                assert len({tuple(_numbers(t)) for t in problem.traces}) == len(problem.traces), problem.traces


@pytest.mark.parametrize("subdomain", MATH)
def test_difficulty_means_more_steps(subdomain):
    steps = [statistics.mean(_think(t).count(" = ") for p in _sample(subdomain, d) for t in p.traces)
             for d in DIFFICULTIES]
    assert all(later >= earlier for earlier, later in zip(steps, steps[1:])), steps
    assert steps[-1] >= steps[0] + 2, steps
    lines = [statistics.mean(_think(t).count("\n") - 1 for p in _sample(subdomain, d) for t in p.traces)
             for d in (1, 5)]  # work lines after the plan line
    assert lines[0] <= 5 and 6 <= lines[1] <= 10, lines


def test_generators_use_their_own_rng_only():
    random.seed(123)
    state = random.getstate()
    first = [make_problem(s, d, random.Random(7)) for s in SUBDOMAINS for d in DIFFICULTIES]
    assert random.getstate() == state, "a generator touched the global random module"
    second = [make_problem(s, d, random.Random(7)) for s in SUBDOMAINS for d in DIFFICULTIES]
    assert [p.to_json() for p in first] == [p.to_json() for p in second]


def test_default_suite_is_fast_disjoint_and_balanced(default_suite):
    suite, seconds = default_suite
    assert seconds < 10
    assert {k: len(v) for k, v in suite.splits.items()} == {"test": 250, "probe": 100, "train": 5000}
    assert_disjoint(suite.splits)
    for split in ("test", "probe"):
        cells = Counter((p.subdomain, p.difficulty) for p in suite.splits[split])
        assert set(cells) == {(s, d) for s in SUBDOMAINS for d in DIFFICULTIES}
        assert len(set(cells.values())) == 1, cells
    ids = [p.id for problems in suite.splits.values() for p in problems]
    assert len(ids) == len(set(ids))
    held_keys = {p.meta["key"] for split in ("test", "probe") for p in suite.splits[split]}
    assert not held_keys & {p.meta["key"] for p in suite.splits["train"]}
    train_texts = [p.problem for p in suite.splits["train"]]
    assert len(train_texts) == len(set(train_texts))
    dropped = sum(suite.stats["dropped"]["decontam"].values())
    assert dropped < 0.05 * suite.stats["candidates"]["train"], "templated texts must carry their numbers densely"


@pytest.mark.parametrize("seed, train, probe, test", [(0, 750, 20, 40), (1, 1000, 20, 50), (2, 750, 20, 40)])
def test_recipe_sizes_generate_clean_balanced_splits(seed, train, probe, test):
    suite = generate_suite(SuiteConfig.uniform(seed, train=train, probe=probe, test=test))
    names = len(SUBDOMAINS)
    assert {k: len(v) for k, v in suite.splits.items()} == {"test": test * names, "probe": probe * names,
                                                           "train": train * names}
    for split in ("test", "probe"):
        cells = Counter((p.subdomain, p.difficulty) for p in suite.splits[split])
        assert len(cells) == names * len(DIFFICULTIES) and len(set(cells.values())) == 1, cells
    held = [p.meta["key"] for split in ("test", "probe") for p in suite.splits[split]]
    assert len(held) == len(set(held))
    assert not set(held) & {p.meta["key"] for p in suite.splits["train"]}


def test_same_seed_same_suite_and_different_seed_differs():
    config = SuiteConfig.uniform(seed=3, train=50, probe=5, test=10)
    first, second = generate_suite(config), generate_suite(config)
    other = generate_suite(SuiteConfig.uniform(seed=4, train=50, probe=5, test=10))
    dump = lambda suite: {k: [p.to_json() for p in v] for k, v in suite.splits.items()}  # noqa: E731
    assert dump(first) == dump(second)
    assert first.stats == second.stats
    assert all(dump(first)[k] != dump(other)[k] for k in first.splits)


def test_held_out_splits_do_not_depend_on_train_size():
    small = generate_suite(SuiteConfig.uniform(seed=5, train=10, probe=5, test=10))
    large = generate_suite(SuiteConfig.uniform(seed=5, train=200, probe=5, test=10))
    for split in ("test", "probe"):
        assert [p.to_json() for p in small.splits[split]] == [p.to_json() for p in large.splits[split]]


def test_write_suite_round_trips(tmp_path):
    suite = generate_suite(SuiteConfig.uniform(seed=1, train=20, probe=5, test=5))
    out = write_suite(suite, tmp_path / "suite")
    for split, problems in suite.splits.items():
        assert [p.to_json() for p in load_problems(out / f"{split}.jsonl")] == [p.to_json() for p in problems]
    assert json.loads((out / "stats.json").read_text())["counts"] == {"test": 25, "probe": 25, "train": 100}


def test_held_out_sizes_must_balance_over_difficulty():
    with pytest.raises(ValueError, match="multiple of 5"):
        generate_suite(SuiteConfig.uniform(train=10, probe=5, test=12))


def test_impossible_request_raises_a_clear_error():
    config = SuiteConfig.uniform(train=5000, probe=0, test=0, subdomains=("counting",), attempts_per_problem=1)
    with pytest.raises(SuiteError, match=r"train/counting/d\d: only \d+ of 1000"):
        generate_suite(config)


def test_unknown_subdomain_is_rejected():
    with pytest.raises(ValueError, match="unknown sub-domains"):
        generate_suite(SuiteConfig(train={"geometry": 5}, probe={}, test={}))
