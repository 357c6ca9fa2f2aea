"""Benchmarks (SPEC 3): loading each file kind with its defaults, the pass@k curve, and ``vibethinker eval --bench``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vibethinker.cli import app
from vibethinker.data.records import Problem, RecordError, write_jsonl
from vibethinker.eval import EvalConfig
from vibethinker.eval.benchmarks import benchmark_kind, load_benchmark, run_benchmarks
from vibethinker.eval.pass_curve import curve_ks, pass_at_k_curve, plot_pass_curve
from vibethinker.generate import Completion, SamplingParams
from vibethinker.model import load_tokenizer
from vibethinker.prompts import render_prompt

SHARED = Path("/work/shared/data")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _head(src: Path, dest_dir: Path, rows: int) -> Path:
    """The first ``rows`` lines of a shared file, under the same file name (the benchmark name comes from it)."""
    dest = dest_dir / src.name
    dest.write_text("".join(src.read_text(encoding="utf-8").splitlines(keepends=True)[:rows]), encoding="utf-8")
    return dest


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


GPQA_ROWS = [
    {"id": "gpqa-1", "question": "Which particle mediates the electromagnetic force?",
     "choices": ["gluon", "photon", "W boson", "graviton"], "answer": "B", "subject": "Physics"},
    {"id": "gpqa-2", "question": "What is the pH of pure water at 25 C?",
     "options": {"A": "7", "B": "1", "C": "14", "D": "0"}, "answer": "(A)"},
    {"id": "gpqa-3", "question": "Which base pairs with adenine in DNA?",
     "choices": ["guanine", "cytosine", "thymine", "uracil"], "answer": "thymine"},
    {"id": "gpqa-4", "question": "How many chromosomes does a human somatic cell have?",
     "choices": ["23", "46", "44", "92"], "answer_index": 1},
]


# -- loading -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("relative, kind, n, fmt", [
    ("bench/aime_2024.jsonl", "math", 64, "shared-bench"),
    ("bench/math500.jsonl", "math", 64, "shared-bench"),
    ("code/leetcode_functional.jsonl", "code", 8, "shared-code"),
    ("code/codeforces_stdin.jsonl", "code", 8, "shared-code"),
    ("code/lcb_v1_sandboxfusion.jsonl", "code", 8, "shared-code"),
])
def test_shared_files_load_with_spec3_defaults(tmp_path, relative, kind, n, fmt):
    path = _head(SHARED / relative, tmp_path, 3)
    problems, info = load_benchmark(path)
    assert (info.kind, info.n, info.format, info.n_problems) == (kind, n, fmt, 3)
    assert (info.temperature, info.top_p, info.top_k, info.overridden) == (1.0, 0.95, 0, [])
    assert info.name == path.stem and info.path == str(path)
    assert [p.domain for p in problems] == ["code" if kind == "code" else "math"] * 3
    if kind == "math":
        assert problems[0].answer == json.loads(path.read_text().splitlines()[0])["answer"]


def test_gpqa_style_file_loads_as_choice(tmp_path):
    problems, info = load_benchmark(_jsonl(tmp_path / "gpqa_diamond.jsonl", GPQA_ROWS))
    assert (info.name, info.kind, info.n, info.format) == ("gpqa_diamond", "choice", 16, "choice")
    assert [p.domain for p in problems] == ["stem"] * 4
    assert [p.answer for p in problems] == ["B", "A", "C", "B"]  # letter, (A), option text, 0-based index
    assert problems[1].choices == ["7", "1", "14", "0"]
    assert problems[0].subdomain == "physics" and problems[0].id == "gpqa-1"


def test_lcb_code_generation_lite_and_our_schema(tmp_path):
    lcb = {"question_title": "Sum", "question_content": "Read a and b, print a + b.", "platform": "atcoder",
           "question_id": "abc001_a", "contest_id": "abc001", "contest_date": "2024-08-03T00:00:00",
           "starter_code": "", "difficulty": "easy",
           "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
           "private_test_cases": json.dumps([]), "metadata": "{}"}
    problems, info = load_benchmark(_jsonl(tmp_path / "lcb_lite.jsonl", [lcb]))
    assert (info.kind, info.n, info.format) == ("code", 8, "lcb") and problems[0].id == "atcoder/abc001_a"

    ours = [Problem(id="q1", domain="stem", subdomain="chem", difficulty=2, problem="Pick one.",
                    choices=["x", "y"], answer="B", source="test")]
    _, info = load_benchmark(write_jsonl(tmp_path / "ours.jsonl", ours))
    assert (info.kind, info.n, info.format) == ("choice", 16, "vibethinker")


def test_imo_answerbench_gets_16_samples(tmp_path):
    row = {"id": "imo-1", "problem": "Find 1 + 1.", "answer": "2", "contest": "IMO shortlist"}
    _, info = load_benchmark(_jsonl(tmp_path / "IMO-AnswerBench.jsonl", [row]))
    assert (info.kind, info.n) == ("math", 16)


def test_loading_errors_name_file_row_and_field(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such benchmark file"):
        load_benchmark(tmp_path / "missing.jsonl")
    with pytest.raises(RecordError, match="cannot tell the format"):
        load_benchmark(_jsonl(tmp_path / "odd.jsonl", [{"text": "hello"}]))
    bad = [GPQA_ROWS[0], {**GPQA_ROWS[0], "id": "gpqa-9", "answer": "E"}]
    with pytest.raises(RecordError, match=r"bad_gpqa\.jsonl:2: field 'answer'"):
        load_benchmark(_jsonl(tmp_path / "bad_gpqa.jsonl", bad))
    with pytest.raises(RecordError, match=r":1: field 'choices'.*2 to 26"):
        load_benchmark(_jsonl(tmp_path / "one_option.jsonl", [{**GPQA_ROWS[0], "choices": ["only"]}]))
    mixed = [Problem(id="m", domain="math", subdomain="a", difficulty=1, problem="1+1?", answer="2", source="t"),
             Problem(id="c", domain="code", subdomain="a", difficulty=1, problem="p", source="t",
                     tests=[{"type": "assert", "code": "assert True"}])]
    with pytest.raises(RecordError, match="mixes kinds"):
        benchmark_kind(mixed, "mixed.jsonl")


def test_default_resolution_and_overrides(tmp_path):
    _, info = load_benchmark(_head(SHARED / "bench/aime_2024.jsonl", tmp_path, 2))
    assert info.with_overrides(n=None, temperature=None, top_p=None, top_k=None) == info  # nothing passed: SPEC 3
    resolved = info.with_overrides(n=2, top_k=20)
    assert (resolved.n, resolved.top_k, resolved.temperature, resolved.overridden) == (2, 20, 1.0, ["n", "top_k"])
    with pytest.raises(ValueError, match="top_p=1.5"):
        info.with_overrides(top_p=1.5)
    with pytest.raises(ValueError, match="not a sampling setting: seed"):
        info.with_overrides(seed=3)


# -- pass@k curve ----------------------------------------------------------------------------------------------------

def test_pass_curve_worked_values():
    assert pass_at_k_curve([(4, 2)]) == pytest.approx({1: 0.5, 2: 5 / 6, 4: 1.0})
    # two problems: (4, 2) and (4, 0): the mean per k
    assert pass_at_k_curve([(4, 2), (4, 0)]) == pytest.approx({1: 0.25, 2: 5 / 12, 4: 0.5})
    # n=6, c=1: pass@k = k/6 (one correct among six, k drawn without replacement)
    assert pass_at_k_curve([(6, 1)]) == pytest.approx({1: 1 / 6, 2: 2 / 6, 4: 4 / 6, 6: 1.0})
    assert curve_ks(1) == [1] and curve_ks(64) == [1, 2, 4, 8, 16, 32, 64] and curve_ks(12) == [1, 2, 4, 8, 12]
    assert list(pass_at_k_curve([(8, 3), (4, 4)])) == [1, 2, 4]  # up to the smallest n
    assert pass_at_k_curve([(8, 3)], ks=[3]) == pytest.approx({3: 1 - 10 / 56})
    with pytest.raises(ValueError, match="smallest n is 4"):
        pass_at_k_curve([(8, 3), (4, 4)], ks=[8])
    with pytest.raises(ValueError, match="at least one problem"):
        pass_at_k_curve([])


def test_plot_pass_curve_writes_png(tmp_path):
    path = plot_pass_curve({"a": {1: 0.2, 2: 0.3, 4: 0.5}, "b": {"1": 0.1, "2": 0.4}}, tmp_path / "curve.png")
    assert path.read_bytes().startswith(PNG_MAGIC)


# -- running a suite ------------------------------------------------------------------------------------------------

class ScriptedGenerator:
    """Sample i of a problem answers correctly when i < that problem's count: a model with known pass rates."""

    def __init__(self, tokenizer, correct_by_prompt: dict[str, tuple[str, int]]):
        self.tokenizer, self.correct_by_prompt, self.samplings = tokenizer, correct_by_prompt, []

    def generate(self, prompts: list[str], sampling: SamplingParams) -> list[Completion]:
        self.samplings.append(sampling)
        out = []
        for pi, prompt in enumerate(prompts):
            answer, correct = self.correct_by_prompt[prompt]
            for si in range(sampling.n):
                text = f"<think>ok</think> \\boxed{{{answer if si < correct else 'Z'}}}"
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                out.append(Completion(pi, si, ids, text, [0.0] * len(ids), "stop"))
        return out


def test_run_benchmarks_exact_curve_and_report(tiny_checkpoint, tmp_path):
    tokenizer = load_tokenizer(tiny_checkpoint)
    math_problems, math_info = load_benchmark(_head(SHARED / "bench/aime_2024.jsonl", tmp_path, 2))
    gpqa_problems, gpqa_info = load_benchmark(_jsonl(tmp_path / "gpqa.jsonl", GPQA_ROWS[:2]))
    counts = {math_problems[0].id: 2, math_problems[1].id: 0, "gpqa-1": 1, "gpqa-2": 4}
    script = {render_prompt(tokenizer, p): (p.answer, counts[p.id]) for p in math_problems + gpqa_problems}
    generator = ScriptedGenerator(tokenizer, script)
    benches = [(math_problems, math_info.with_overrides(n=4)), (gpqa_problems, gpqa_info.with_overrides(n=4))]
    report = run_benchmarks(generator, benches, EvalConfig(progress=False, score_workers=2), tmp_path / "out")

    math_entry, gpqa_entry = report["benchmarks"]["aime_2024"], report["benchmarks"]["gpqa"]
    assert math_entry["pass_curve"] == pytest.approx({"1": 0.25, "2": 5 / 12, "4": 0.5})
    assert gpqa_entry["pass_curve"] == pytest.approx({"1": 5 / 8, "2": 0.75, "4": 1.0})
    assert math_entry["pass@1"] == pytest.approx(0.25) and math_entry["cons@n"] == pytest.approx(0.5)
    assert gpqa_entry["kind"] == "choice" and gpqa_entry["cons@n"] == pytest.approx(0.5)
    assert json.loads((tmp_path / "out" / "benchmarks.json").read_text()) == report
    summary = json.loads((tmp_path / "out" / "gpqa" / "summary.json").read_text())
    assert summary["benchmark"]["n"] == 4 and summary["pass_curve"] == gpqa_entry["pass_curve"]
    assert all(s.n == 4 and s.temperature == 1.0 and s.top_p == 0.95 for s in generator.samplings)
    assert (tmp_path / "out" / "pass_curve.png").read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="share the name 'gpqa'"):
        run_benchmarks(generator, [benches[1], benches[1]], EvalConfig(progress=False), tmp_path / "again")


def test_cli_eval_bench_on_tiny_checkpoint(tiny_checkpoint, tmp_path):
    math_file = _head(SHARED / "bench/aime_2024.jsonl", tmp_path, 3)
    code_file = _head(SHARED / "code/leetcode_functional.jsonl", tmp_path, 2)
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["eval", "--model", tiny_checkpoint, "--bench", str(math_file), "--bench",
                                      str(code_file), "--out", str(out), "--n", "2", "--max-new-tokens", "8",
                                      "--batch-size", "8"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "aime_2024" in result.output and "leetcode_functional" in result.output
    report = json.loads((out / "benchmarks.json").read_text())
    assert list(report["benchmarks"]) == ["aime_2024", "leetcode_functional"]
    for name, kind, problems in (("aime_2024", "math", 3), ("leetcode_functional", "code", 2)):
        rows = (out / name / "samples.jsonl").read_text().splitlines()
        assert len(rows) == problems * 2
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["config"]["n"] == 2 and summary["config"]["max_new_tokens"] == 8
        assert summary["config"]["temperature"] == 1.0 and summary["config"]["top_p"] == 0.95
        assert summary["benchmark"]["kind"] == kind and summary["benchmark"]["overridden"] == ["n"]
        assert set(summary["pass_curve"]) == {"1", "2"}
        assert summary["pass_curve"]["1"] == pytest.approx(summary["pass@1"])
        entry = report["benchmarks"][name]
        assert entry["n"] == 2 and entry["pass@1_ci"] == summary["pass@1_ci"]
        assert entry["cons@n"] == summary["cons@2"] and entry["cutoff_ratio"] == summary["cutoff_ratio"]
    assert (out / "pass_curve.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("args, message", [
    (["--bench", "{tmp}/missing.jsonl"], "no such benchmark file"),
    (["--bench", "{tmp}/odd.jsonl"], "cannot tell the format"),
    (["--bench", "{tmp}/bad.jsonl"], "bad.jsonl:1: field 'answer'"),
    (["--bench", "{tmp}/odd.jsonl", "--data", "{tmp}/odd.jsonl"], "either --data"),
    ([], "either --data"),
])
def test_cli_eval_bench_errors_exit_2(tiny_checkpoint, tmp_path, args, message):
    _jsonl(tmp_path / "odd.jsonl", [{"text": "hello"}])
    _jsonl(tmp_path / "bad.jsonl", [{**GPQA_ROWS[0], "answer": "Q"}])
    args = [arg.format(tmp=tmp_path) for arg in args]
    result = CliRunner().invoke(app, ["eval", "--model", tiny_checkpoint, "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    assert "".join(message.split()) in "".join(result.output.split())  # rich wraps long paths at 80 columns


def test_cli_eval_bench_bad_override_exit_2(tiny_checkpoint, tmp_path):
    bench = _head(SHARED / "bench/aime_2024.jsonl", tmp_path, 1)
    result = CliRunner().invoke(app, ["eval", "--model", tiny_checkpoint, "--bench", str(bench), "--out",
                                      str(tmp_path / "o"), "--top-p", "0"])
    assert result.exit_code == 2 and "top_p=0.0" in "".join(result.output.split())
    assert not (tmp_path / "o").exists()
