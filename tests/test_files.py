"""Atomic writes (files and folders) and the shared JSONL reader: a crash leaves the old content, bad lines are named."""

from __future__ import annotations

import json
import os

import pytest

from vibethinker.data.records import RecordError, read_rows
from vibethinker.utils.files import (
    JsonlError, atomic_file, atomic_folder, read_jsonl, write_bytes_atomic, write_json_atomic, write_text_atomic,
)
from vibethinker.utils.run_log import RunLog, read_metrics


def _siblings(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_atomic_file_writes_content_with_the_umask_mode(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_file(target, "w") as handle:
        handle.write("héllo\n")
        assert not target.exists()  # nothing at the destination until the block ends
    assert target.read_bytes() == "héllo\n".encode()
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # as a plain open() would create it, not mkstemp's 0600
    assert _siblings(target) == ["out.txt"]
    assert write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert write_text_atomic(tmp_path / "t.txt", "a\nb").read_text() == "a\nb"
    assert json.loads(write_json_atomic(tmp_path / "j.json", {"k": [1, "é"]}).read_text()) == {"k": [1, "é"]}


def test_atomic_file_failure_keeps_the_old_content_and_removes_the_temp(tmp_path):
    target = write_text_atomic(tmp_path / "out.txt", "old\n")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_file(target, "wb") as handle:
            handle.write(b"half of the new")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old\n"
    assert _siblings(target) == ["out.txt"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_file(target, "a"):
            pass


def test_atomic_folder_replaces_the_folder(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_folder(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        (tmp / "a.txt").write_text("first")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_folder(target) as tmp:
        (tmp / "b.txt").write_text("second")
        assert (target / "a.txt").read_text() == "first"  # the old folder stays readable while the new one is filled
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # replaced, not merged
    assert _siblings(target) == ["ckpt"]  # neither the temp folder nor the moved-aside old one is left


def test_atomic_folder_failure_keeps_the_old_folder_and_removes_the_temp(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(OSError, match="disk full"):
        with atomic_folder(target) as tmp:
            (tmp / "weights.bin").write_bytes(b"partial")
            raise OSError("disk full")
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"] and (target / "keep.txt").read_text() == "old"
    assert _siblings(target) == ["ckpt"]
    with pytest.raises(OSError):
        with atomic_folder(tmp_path / "new"):
            raise OSError("disk full")
    assert _siblings(target) == ["ckpt"]  # a failed first write leaves no folder at all


def test_read_jsonl_numbers_lines_and_names_a_bad_one(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n[2, 3]\n"text \u2028 with a line separator"\n{"b": \n{"c": 4}\n', encoding="utf-8")
    rows = read_jsonl(path)
    assert next(rows) == (1, {"a": 1})
    assert next(rows) == (3, [2, 3])
    assert next(rows) == (4, "text \u2028 with a line separator")  # split on newlines only
    with pytest.raises(JsonlError) as info:
        next(rows)
    assert isinstance(info.value, ValueError) and info.value.line == 5
    assert str(info.value).startswith(f"{path}:5: not valid JSON: Expecting value")


def test_read_jsonl_can_skip_torn_lines_of_an_append_only_log(tmp_path):
    path = tmp_path / "log.jsonl"
    # a crash mid-append tore step 2; the resumed run's next append glued onto it, then the run crashed again
    path.write_text('{"step": 1}\n{"step": 2, "ti{"step": 2, "time": 5}\n{"step": 3}\n{"step": 4, "t')
    assert list(read_jsonl(path, skip_torn_lines=True)) == [(1, {"step": 1}), (3, {"step": 3})]
    with pytest.raises(JsonlError, match=r"log\.jsonl:2: "):
        list(read_jsonl(path))


def test_read_rows_keeps_its_record_error(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "x"}\n{not json\n')
    with pytest.raises(RecordError) as info:
        read_rows(path)  # raises before any row is handed out
    assert (info.value.line, info.value.field) == (2, "<json>")
    assert str(info.value) == f"{path}:2: field '<json>': not valid JSON: Expecting property name enclosed in " \
                              "double quotes at column 2"


def test_run_log_resume_cuts_the_log_back_to_the_resumed_step(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    for step in (1, 2, 3):
        log.log(step, {"loss": 1.0 / step, "note": "é"})
    log.close()
    written = (tmp_path / "metrics.jsonl").read_text()
    RunLog(tmp_path, resume_step=2, tensorboard=False).close()
    assert (tmp_path / "metrics.jsonl").read_text() == "".join(written.splitlines(keepends=True)[:2])
    assert [row["step"] for row in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2]
    assert read_metrics(tmp_path / "missing.jsonl") == []
