"""Converters from public formats (verl, DeepScaleR, OpenR1-Math, LiveCodeBench, the shared data) into our schema."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vibethinker.data.formats import (
    ConvertOptions,
    convert_file,
    convert_problems,
    detect_format,
)
from vibethinker.data.formats.chat import strip_instructions, to_trace
from vibethinker.data.formats.safe_pickle import UnsafePickleError, loads_plain
from vibethinker.data.records import RecordError, load_problems, parse_problem
from vibethinker.prompts import MATH_SUFFIX

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"reference data not found at {SHARED}")


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _all_parse(path: Path) -> list:
    return [parse_problem(json.loads(line), path, i) for i, line in enumerate(path.read_text().splitlines(), 1)]


# -- verl ---------------------------------------------------------------------------------------------------------
def _verl_row(index: int, user: str, truth, ability: str = "math", system: str | None = None) -> dict:
    prompt = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return {"data_source": "lighteval/MATH", "prompt": prompt, "ability": ability,
            "reward_model": {"style": "rule", "ground_truth": truth}, "extra_info": {"index": index, "split": "train"}}


def test_verl_parquet_math_and_code(tmp_path):
    io_spec = json.dumps({"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"], "fn_name": None})
    src = _parquet(tmp_path / "verl.parquet", [
        _verl_row(0, f"What is $2+3$? {MATH_SUFFIX}", "5", system="Please reason step by step."),
        _verl_row(1, "Read two integers and print their sum.", io_spec, ability="code"),
    ])
    assert detect_format(src) == "verl"
    report = convert_file(src, "auto", tmp_path / "out.jsonl")
    assert (report.rows_read, report.written, report.skipped) == (2, 2, [])
    first, code = load_problems(tmp_path / "out.jsonl")
    assert first.id == "lighteval/MATH-train-0" and first.problem == "What is $2+3$?" and first.answer == "5"
    assert first.meta["original_prompt"][0]["role"] == "system" and first.source == "verl:verl.parquet"
    assert first.difficulty == 3 and "difficulty: not in source, default 3" in first.meta["convert_notes"]
    assert code.domain == "code" and [t.type for t in code.tests] == ["stdin", "stdin"]
    assert code.tests[1].input == "5 7\n" and code.tests[1].output == "12\n"
    assert json.loads((tmp_path / "out.report.json").read_text())["written"] == 2


def test_verl_list_ground_truth(tmp_path):
    src = _parquet(tmp_path / "lists.parquet", [_verl_row(1, "Find all $x$ with $x^2=4$.", ["2, -2", "-2, 2"])])
    (problem,), _ = convert_problems(src, "verl")
    assert problem.answer == "2, -2" and problem.meta["ground_truth"] == ["2, -2", "-2, 2"]
    empty = _parquet(tmp_path / "empty.parquet", [_verl_row(1, "Find $x$.", [])])
    with pytest.raises(RecordError, match=r"empty\.parquet:1: field 'reward_model\.ground_truth'"):
        convert_problems(empty, "verl")


def test_verl_unknown_ability_needs_domain(tmp_path):
    src = _parquet(tmp_path / "v.parquet", [_verl_row(0, "Name a colour.", "red", ability="trivia")])
    with pytest.raises(RecordError, match=r"v\.parquet:1: field 'ability': unknown ability 'trivia'"):
        convert_file(src, "verl", tmp_path / "out.jsonl")
    convert_file(src, "verl", tmp_path / "out.jsonl", ConvertOptions(domain="math", subdomain="colours"))
    (problem,) = load_problems(tmp_path / "out.jsonl")
    assert (problem.domain, problem.subdomain) == ("math", "colours")


# -- DeepScaleR ---------------------------------------------------------------------------------------------------
DEEPSCALER_ROWS = [
    {"problem": "Compute $1+1$.", "answer": "2", "solution": "One plus one is $\\boxed{2}$."},
    {"problem": "Compute $2 \\cdot 3$.", "answer": "6"},
]


def test_deepscaler_json_array_and_jsonl_agree(tmp_path):
    (tmp_path / "ds.json").write_text(json.dumps(DEEPSCALER_ROWS, indent=2))
    _jsonl(tmp_path / "ds.jsonl", DEEPSCALER_ROWS)
    from_array, _ = convert_problems(tmp_path / "ds.json")
    from_lines, report = convert_problems(tmp_path / "ds.jsonl", "deepscaler", ConvertOptions(subdomain="arith"))
    assert report.format == "deepscaler" and [p.id for p in from_array] == ["ds-1", "ds-2"]
    assert [p.answer for p in from_array] == [p.answer for p in from_lines] == ["2", "6"]
    assert from_array[0].meta["solution"].endswith("$\\boxed{2}$.") and from_array[0].traces == []
    assert from_array[0].subdomain == "general" and from_lines[0].subdomain == "arith"


def test_bad_row_names_file_line_and_field_or_is_skipped(tmp_path):
    rows = [DEEPSCALER_ROWS[0], DEEPSCALER_ROWS[1], {"problem": "What is $0!$?", "answer": ""}]
    src = _jsonl(tmp_path / "bad.jsonl", rows)
    (tmp_path / "out.jsonl").write_text("old\n")
    with pytest.raises(RecordError) as info:
        convert_file(src, "deepscaler", tmp_path / "out.jsonl")
    assert str(info.value).startswith(f"{src}:3: field 'answer'")
    assert (tmp_path / "out.jsonl").read_text() == "old\n"  # nothing replaced on failure
    report = convert_file(src, "deepscaler", tmp_path / "out.jsonl", ConvertOptions(skip_bad=True))
    assert report.written == 2 and len(_all_parse(tmp_path / "out.jsonl")) == 2
    saved = json.loads((tmp_path / "out.report.json").read_text())
    assert saved["skipped"] == 1 and saved["skipped_rows"][0]["row"] == 3
    assert saved["skipped_rows"][0]["field"] == "answer"


def test_duplicate_ids_and_files_already_in_schema(tmp_path):
    src = _jsonl(tmp_path / "dup.jsonl", [{**DEEPSCALER_ROWS[0], "id": "a"}, {**DEEPSCALER_ROWS[1], "id": "a"}])
    with pytest.raises(RecordError, match=r"dup\.jsonl:2: field 'id': duplicate id 'a' \(first on row 1\)"):
        convert_file(src, "deepscaler", tmp_path / "out.jsonl")
    convert_file(_jsonl(tmp_path / "ok.jsonl", DEEPSCALER_ROWS), "auto", tmp_path / "ours.jsonl")
    with pytest.raises(RecordError, match="already in the vibethinker problem schema"):
        detect_format(tmp_path / "ours.jsonl")
    broken = json.loads((tmp_path / "ours.jsonl").read_text().splitlines()[0]) | {"difficulty": 7}
    with pytest.raises(RecordError, match=r"broken\.jsonl:1: field 'difficulty'"):
        detect_format(_jsonl(tmp_path / "broken.jsonl", [broken]))


# -- OpenR1-Math --------------------------------------------------------------------------------------------------
def test_openr1_traces_from_messages_and_verified_generations(tmp_path):
    think = "<think>\nAdd the numbers.\n</think>\n\nThe answer is $\\boxed{5}$."
    row = {
        "problem": "What is $2+3$?", "solution": "$2+3=5$.", "answer": "5", "problem_type": "Algebra",
        "question_type": "math-word-problem", "source": "olympiads", "uuid": "u-1",
        "messages": [{"role": "user", "content": "What is $2+3$?"}, {"role": "assistant", "content": think}],
        "generations": [think, "<think>\nMaybe 6.\n</think>\n$\\boxed{6}$", "Two plus three is $\\boxed{5}$.",
                        "<think>\nI keep thinking and never"],
        "correctness_math_verify": [True, False, True, True],
    }
    src = _jsonl(tmp_path / "openr1.jsonl", [row])
    assert detect_format(src) == "openr1"
    (problem,) = convert_problems(src)[0]
    assert problem.id == "u-1" and problem.subdomain == "algebra" and problem.meta["origin"] == "olympiads"
    assert problem.traces == ["<think>\nAdd the numbers.\n</think>\nThe answer is $\\boxed{5}$.",
                              "<think>\n</think>\nTwo plus three is $\\boxed{5}$."]
    assert problem.meta["traces_dropped_no_final"] == 1
    bad = _jsonl(tmp_path / "bad.jsonl", [{**row, "correctness_math_verify": [True]}])
    with pytest.raises(RecordError, match=r"bad\.jsonl:1: field 'correctness_math_verify': 1 flags for 4"):
        convert_problems(bad)


def test_trace_form_and_instruction_stripping():
    assert to_trace("<think>a</think>b") == "<think>\na\n</think>\nb"
    assert to_trace("reasoning without an opening tag</think>\n42") == \
        "<think>\nreasoning without an opening tag\n</think>\n42"
    assert to_trace("<think>cut off") is None and to_trace("<think>x</think>  ") is None
    assert strip_instructions(f"  Solve $x+1=2$. {MATH_SUFFIX}") == "Solve $x+1=2$."


# -- LiveCodeBench ------------------------------------------------------------------------------------------------
def _compress(cases: list[dict]) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode("ascii")


def _lcb_row(qid: str, private, *, functional: bool, difficulty: str = "easy") -> dict:
    kind = "functional" if functional else "stdin"
    public = [{"input": "[1, 2]" if functional else "1 2\n", "output": "3" if functional else "3\n",
               "testtype": kind}]
    return {"question_title": f"Sum {qid}", "question_content": "Add two numbers.", "platform": "leetcode"
            if functional else "atcoder", "question_id": qid, "contest_id": "c1",
            "contest_date": "2024-08-03T00:00:00", "starter_code": "class Solution:\n    def add(self, a, b):\n"
            if functional else "", "difficulty": difficulty, "public_test_cases": json.dumps(public),
            "private_test_cases": private, "metadata": json.dumps({"func_name": "add"} if functional else {})}


class _RunsShell:
    """Unpickling this with plain ``pickle.loads`` would run the shell command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_lcb_json_and_compressed_private_tests(tmp_path):
    stdin_private = [{"input": "10 20\n", "output": "30\n", "testtype": "stdin"},
                     {"input": "-1 1\n", "output": "0\n", "testtype": "stdin"}]
    rows = [_lcb_row("9001", json.dumps([{"input": "[2, 2]", "output": "4", "testtype": "functional"}]),
                     functional=True, difficulty="medium"),
            _lcb_row("abc001_a", _compress(stdin_private), functional=False, difficulty="hard")]
    for src in (_jsonl(tmp_path / "lcb.jsonl", rows), _parquet(tmp_path / "lcb.parquet", rows)):
        assert detect_format(src) == "lcb"
        out = tmp_path / f"{src.suffix[1:]}.jsonl"
        convert_file(src, "auto", out)
        functional, stdin = load_problems(out)
        assert functional.id == "leetcode/9001" and functional.difficulty == 3 and functional.domain == "code"
        assert [(t.type, t.fn_name, t.input, t.output) for t in functional.tests] == [
            ("functional", "add", "[1, 2]", "3"), ("functional", "add", "[2, 2]", "4")]
        assert functional.meta["starter_code"].startswith("class Solution") and functional.meta["public_tests"] == 1
        assert stdin.id == "atcoder/abc001_a" and stdin.difficulty == 4 and stdin.subdomain == "atcoder"
        assert [(t.type, t.input, t.output) for t in stdin.tests] == [
            ("stdin", "1 2\n", "3\n"), ("stdin", "10 20\n", "30\n"), ("stdin", "-1 1\n", "0\n")]
        assert "starter_code" not in stdin.meta and stdin.meta["private_tests"] == 2


def test_lcb_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsShell(f"touch {marker}"))
    assert b"system" in payload  # the payload really names os.system
    evil = base64.b64encode(zlib.compress(payload)).decode("ascii")
    good = _lcb_row("abc002_a", _compress([{"input": "2 2\n", "output": "4\n", "testtype": "stdin"}]),
                    functional=False)
    src = _jsonl(tmp_path / "lcb.jsonl", [good, _lcb_row("abc003_a", evil, functional=False)])
    with pytest.raises(RecordError) as info:
        convert_file(src, "lcb", tmp_path / "out.jsonl")
    message = str(info.value)
    assert message.startswith(f"{src}:2: field 'private_test_cases'") and "system" in message
    assert "refused" in message and not marker.exists()
    report = convert_file(src, "lcb", tmp_path / "out.jsonl", ConvertOptions(skip_bad=True))
    assert report.written == 1 and report.skipped[0]["row"] == 2 and not marker.exists()
    assert [p.id for p in load_problems(tmp_path / "out.jsonl")] == ["atcoder/abc002_a"]


def test_data_only_unpickler():
    assert loads_plain(pickle.dumps({"a": [1, 2.5, None, True, (b"x", "y")]})) == {"a": [1, 2.5, None, True,
                                                                                        (b"x", "y")]}
    with pytest.raises(UnsafePickleError, match="refused"):
        loads_plain(pickle.dumps(Path("x")))
    with pytest.raises(UnsafePickleError, match="not a valid pickle"):
        loads_plain(b"\x80\x04garbage")


# -- the shared reference data ------------------------------------------------------------------------------------
@needs_shared
@pytest.mark.parametrize("folder,fmt", [("bench", "shared-bench"), ("code", "shared-code")])
def test_shared_files_convert_and_parse(tmp_path, folder, fmt):
    for src in sorted((SHARED / folder).glob("*.jsonl")):
        assert detect_format(src) == fmt, src
        out = tmp_path / src.name
        report = convert_file(src, "auto", out, ConvertOptions(limit=4))
        problems = _all_parse(out)
        assert report.written == len(problems) == min(4, report.rows_read) > 0
        originals = [json.loads(line) for line in src.read_text().splitlines()[:len(problems)]]
        assert [p.id for p in problems] == [row["id"] for row in originals]
        assert all(p.source == f"{fmt}:{src.name}" for p in problems)
        if fmt == "shared-bench":
            assert [p.answer for p in problems] == [str(row["answer"]) for row in originals]
        else:
            assert all(p.domain == "code" and p.tests for p in problems)
            assert not any(p.problem.startswith(("You are an expert", "Please solve")) for p in problems)


@needs_shared
def test_shared_math500_maps_level_and_subject(tmp_path):
    problems, report = convert_problems(SHARED / "bench" / "math500.jsonl", options=ConvertOptions(limit=3))
    assert [p.difficulty for p in problems] == [row["level"] for row in map(
        json.loads, (SHARED / "bench" / "math500.jsonl").read_text().splitlines()[:3])]
    assert problems[0].subdomain == "precalculus" and not report.notes


@needs_shared
def test_shared_code_tests_judge_reference_solutions(tmp_path):
    from vibethinker.verify.code.judge import judge_program

    for name in ("lcb_v1_sandboxfusion.jsonl", "leetcode_functional.jsonl"):
        problems, _ = convert_problems(SHARED / "code" / name, options=ConvertOptions(limit=3))
        for problem in problems:
            assert judge_program(problem.meta["correct_solution"], problem.tests).passed, problem.id
            if "wrong_solution" in problem.meta:
                assert not judge_program(problem.meta["wrong_solution"], problem.tests).passed, problem.id
