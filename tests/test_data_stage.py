"""The data stage on user files: training problems sharing a 10-gram with an eval set are dropped and reported."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vibethinker.cli import app
from vibethinker.data.records import Problem, load_problems, write_jsonl

SHARED = "a train leaves the station at nine and travels at sixty miles per hour toward the city"


def _problem(pid: str, text: str) -> Problem:
    return Problem(id=pid, domain="math", subdomain="word", difficulty=1, problem=text, answer="1", source="test",
                   traces=["<think>\nok\n</think>\nThe answer is \\boxed{1}."])


def test_user_files_are_decontaminated_against_eval_sets(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [
        _problem("t1", SHARED.capitalize() + "! When does it arrive?"),  # same 10 words, other case/punctuation
        _problem("t2", "Compute the sum of the first 12 odd numbers and explain each step briefly."),
    ])
    heldout = write_jsonl(tmp_path / "heldout.jsonl", [_problem("e1", "Question: " + SHARED + ", how far?")])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: own\nstages:\n  - name: data\n    kind: data\n    train: {train}\n"
                      f"    eval: {{test: {heldout}}}\n")
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    kept = load_problems(tmp_path / "run" / "data" / "train.jsonl")
    assert [p.id for p in kept] == ["t2"]
    assert [p.id for p in load_problems(tmp_path / "run" / "data" / "test.jsonl")] == ["e1"]
    report = json.loads((tmp_path / "run" / "data" / "decontamination.json").read_text())
    assert report["dropped"] == 1 and report["drops"][0]["eval_id"] == "e1"
