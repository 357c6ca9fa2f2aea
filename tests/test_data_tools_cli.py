"""``vibethinker data decontaminate`` / ``convert`` through typer's CliRunner on ``data_app``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vibethinker.data.decontam import normalise
from vibethinker.data.records import Problem, load_problems, write_jsonl
from vibethinker.data.tools_cli import data_app

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EVAL_TEXT = ("A farmer has 17 sheep and buys 25 more on each of the 3 market days of the week; "
             "how many sheep does the farmer own at the end of the week?")
runner = CliRunner()


def _p(pid: str, text: str) -> Problem:
    return Problem(id=pid, domain="math", subdomain="t", difficulty=2, problem=text, answer="1", source="test")


def _window(text: str, start: int, size: int) -> str:
    return " ".join(normalise(text)[start:start + size])


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    ten = _window(EVAL_TEXT, 3, 10)   # "17 sheep and buys 25 more on each of the"
    nine = _window(EVAL_TEXT, 3, 9)
    train = write_jsonl(tmp_path / "train.jsonl", [
        _p("copied", f"Warm-up: {ten.upper().replace(' 25 ', ' 25, ')}!!! Then count the goats."),
        _p("near", f"Unrelated start; {nine} cows are sold."),
        _p("clean", "Compute the sum of the first ten odd numbers."),
    ])
    eval_a = write_jsonl(tmp_path / "farm_eval.jsonl", [_p("farm-1", EVAL_TEXT)])
    eval_b = write_jsonl(tmp_path / "other_eval.jsonl", [_p("other-1", "Prove that there are infinitely many primes.")])
    return train, eval_a, eval_b


def test_decontaminate_drops_planted_10gram_keeps_9gram(tmp_path):
    train, eval_a, eval_b = _files(tmp_path)
    out = tmp_path / "kept.jsonl"
    result = runner.invoke(data_app, ["decontaminate", "--train", str(train), "--eval", str(eval_a),
                                      "--eval", str(eval_b), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [p.id for p in load_problems(out)] == ["near", "clean"]
    report = json.loads((tmp_path / "kept.decontamination.json").read_text())
    assert report["totals"] == {"train": 3, "kept": 2, "dropped": 1} and report["n"] == 10
    (drop,) = report["dropped"]
    assert drop == {"id": "copied", "field": "problem", "eval_set": "farm_eval", "eval_file": str(eval_a),
                    "eval_id": "farm-1", "ngram": "17 sheep and buys 25 more on each of the"}
    assert [(e["name"], e["dropped"]) for e in report["eval"]] == [("farm_eval", 1), ("other_eval", 0)]
    assert "dropped 1" in result.output


def test_decontaminate_shorter_n_catches_the_9gram(tmp_path):
    train, eval_a, _ = _files(tmp_path)
    report_path = tmp_path / "r.json"
    result = runner.invoke(data_app, ["decontaminate", "--train", str(train), "--eval", str(eval_a), "--out",
                                      str(tmp_path / "kept.jsonl"), "--report", str(report_path), "--n", "9"])
    assert result.exit_code == 0, result.output
    assert sorted(d["id"] for d in json.loads(report_path.read_text())["dropped"]) == ["copied", "near"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="reference data not found")
def test_decontaminate_against_a_raw_shared_eval_file(tmp_path):
    aime = SHARED / "bench" / "aime_2024.jsonl"
    first = json.loads(aime.read_text().splitlines()[0])
    copied = _window(first["problem"], 5, 12)
    train = write_jsonl(tmp_path / "train.jsonl", [_p("leak", copied.title() + "?"), _p("ok", "What is 2+2?")])
    out = tmp_path / "kept.jsonl"
    result = runner.invoke(data_app, ["decontaminate", "--train", str(train), "--eval", str(aime), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "kept.decontamination.json").read_text())
    assert report["eval"][0]["format"] == "shared-bench" and report["eval"][0]["problems"] == 30
    assert [(d["id"], d["eval_id"]) for d in report["dropped"]] == [("leak", first["id"])]
    assert [p.id for p in load_problems(out)] == ["ok"]


def test_decontaminate_errors_exit_2(tmp_path):
    train, eval_a, _ = _files(tmp_path)
    missing = runner.invoke(data_app, ["decontaminate", "--train", str(tmp_path / "nope.jsonl"), "--eval",
                                       str(eval_a), "--out", str(tmp_path / "o.jsonl")])
    assert missing.exit_code == 2 and "error:" in missing.output and "nope.jsonl" in missing.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(train.read_text() + '{"id": "x", "domain": "math", "subdomain": "t", "difficulty": 9, '
                   '"problem": "p", "answer": "1", "source": "s"}\n')
    result = runner.invoke(data_app, ["decontaminate", "--train", str(bad), "--eval", str(eval_a), "--out",
                                      str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and f"{bad}:4: field 'difficulty'" in result.output
    everything = runner.invoke(data_app, ["decontaminate", "--train", str(eval_a), "--eval", str(eval_a), "--out",
                                          str(tmp_path / "o.jsonl")])
    assert everything.exit_code == 2 and "every training problem overlaps" in everything.output
    assert not (tmp_path / "o.jsonl").exists() and (tmp_path / "o.decontamination.json").exists()


def test_convert_command_writes_problems_and_report(tmp_path):
    src = tmp_path / "ds.jsonl"
    src.write_text(json.dumps({"problem": "Compute $1+1$.", "answer": "2"}) + "\n"
                   + json.dumps({"problem": "Compute $2+2$.", "answer": "4", "level": "Level 2"}) + "\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(data_app, ["convert", str(src), "--format", "auto", "--out", str(out),
                                      "--subdomain", "arithmetic"])
    assert result.exit_code == 0, result.output
    problems = load_problems(out)
    assert [(p.id, p.subdomain, p.difficulty) for p in problems] == [("ds-1", "arithmetic", 3),
                                                                     ("ds-2", "arithmetic", 2)]
    assert "deepscaler" in result.output and "written" in result.output
    assert json.loads((tmp_path / "out.report.json").read_text())["notes"] == {
        "difficulty: not in source, default 3": 1}


def test_convert_command_errors(tmp_path):
    src = tmp_path / "ds.jsonl"
    src.write_text(json.dumps({"problem": "Compute $1+1$.", "answer": "2"}) + "\n"
                   + json.dumps({"problem": "", "answer": "4"}) + "\n")
    out = tmp_path / "out.jsonl"
    bad_row = runner.invoke(data_app, ["convert", str(src), "--out", str(out)])
    assert bad_row.exit_code == 2 and f"error: {src}:2: field 'problem'" in bad_row.output
    assert not out.exists()
    skipped = runner.invoke(data_app, ["convert", str(src), "--out", str(out), "--skip-bad"])
    assert skipped.exit_code == 0 and len(load_problems(out)) == 1
    for args in (["--format", "csv"], ["--domain", "poetry"]):
        result = runner.invoke(data_app, ["convert", str(src), "--out", str(out), *args])
        assert result.exit_code == 2 and "error:" in result.output, args
