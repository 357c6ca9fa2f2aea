"""The problem schema: valid records load from JSONL and parquet; bad input names file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vibethinker.data.records import RecordError, load_problems, write_jsonl

GOOD = {"id": "m1", "domain": "math", "subdomain": "algebra", "difficulty": 2, "problem": "1+1?", "answer": "2",
        "source": "test"}
CODE = {"id": "c1", "domain": "code", "subdomain": "functions", "difficulty": 1, "problem": "write f",
        "tests": [{"type": "assert", "code": "assert f(1) == 2"}], "source": "test"}
CHOICE = {"id": "s1", "domain": "stem", "subdomain": "physics", "difficulty": 3, "problem": "pick",
          "choices": ["a", "b", "c"], "answer": "C", "source": "test"}


def _write(tmp_path: Path, rows: list, name: str = "p.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_valid_records_load_from_jsonl_and_parquet(tmp_path):
    problems = load_problems(_write(tmp_path, [GOOD, CODE, CHOICE]))
    assert [p.id for p in problems] == ["m1", "c1", "s1"]
    assert problems[1].tests[0].code == "assert f(1) == 2"
    pq.write_table(pa.Table.from_pylist([{**GOOD, "answer": 2}, {**GOOD, "id": "m2", "answer": 17}]),
                   tmp_path / "p.parquet")
    loaded = load_problems(tmp_path / "p.parquet")
    assert loaded[1].answer == "17"  # numeric answers (AIME files) become text


def test_real_reference_answer_set_loads():
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "bench" / "aime_2025.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not present")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 30 and "problem" in rows[0] and "answer" in rows[0]


@pytest.mark.parametrize("row, line, field, message", [
    ({**GOOD, "answer": ""}, 2, "answer", "non-empty answer"),
    ({**GOOD, "difficulty": 9}, 2, "difficulty", "less than or equal to 5"),
    ({**GOOD, "domain": "poetry"}, 2, "domain", "math"),
    ({k: v for k, v in GOOD.items() if k != "problem"}, 2, "problem", "required"),
    ({**CODE, "tests": []}, 2, "tests", "at least one test"),
    ({**CODE, "tests": [{"type": "stdin", "input": "1"}]}, 2, "tests.0", "needs 'output'"),
    ({**CHOICE, "answer": "E"}, 2, "answer", "choice letters"),
    ({**GOOD, "colour": "red"}, 2, "colour", "unknown field"),
    ("{not json", 2, "<json>", "not valid JSON"),
    ([1, 2], 2, "<record>", "JSON object"),
])
def test_invalid_records_name_file_line_and_field(tmp_path, row, line, field, message):
    path = _write(tmp_path, [GOOD, row])
    with pytest.raises(RecordError) as info:
        load_problems(path)
    assert info.value.line == line and info.value.field == field
    assert str(path) in str(info.value) and message in str(info.value)


def test_duplicate_ids_and_empty_files_are_errors(tmp_path):
    with pytest.raises(RecordError, match="duplicate id 'm1'"):
        load_problems(_write(tmp_path, [GOOD, GOOD]))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(RecordError, match="no records"):
        load_problems(tmp_path / "empty.jsonl")
    with pytest.raises(FileNotFoundError):
        load_problems(tmp_path / "missing.jsonl")


def test_write_jsonl_is_atomic(tmp_path):
    problems = load_problems(_write(tmp_path, [GOOD, CODE]))
    target = write_jsonl(tmp_path / "out.jsonl", problems)
    assert [p.id for p in load_problems(target)] == ["m1", "c1"]

    def broken():
        yield problems[0]
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl(target, broken())
    assert [p.id for p in load_problems(target)] == ["m1", "c1"]  # the old file is intact
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
