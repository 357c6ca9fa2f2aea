"""The eval runner end to end: files and keys on a tiny random model, exact metrics with a scripted generator."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from vibethinker.data.records import Problem
from vibethinker.eval import SAMPLE_KEYS, EvalConfig, evaluate, format_summary_table
from vibethinker.generate import Completion, SamplingParams
from vibethinker.model import load_tokenizer
from vibethinker.prompts import render_prompt

from conftest import build_tiny_checkpoint

ADD_OK = "<think>add them</think>\n```python\ndef add(a, b):\n    return a + b\n```"
ADD_BAD = "<think>subtract?</think>\n```python\ndef add(a, b):\n    return a - b\n```"


def _problems() -> list[Problem]:
    return [
        Problem(id="m1", domain="math", subdomain="arithmetic", difficulty=1, problem="What is 2 + 2?", answer="4",
                source="synthetic"),
        Problem(id="m2", domain="math", subdomain="linear_equations", difficulty=2, problem="Solve x - 3 = 4.",
                answer="7", source="synthetic"),
        Problem(id="c1", domain="code", subdomain="functions", difficulty=2, problem="Write add(a, b).",
                tests=[{"type": "assert", "code": "assert add(1, 2) == 3"},
                       {"type": "assert", "code": "assert add(-1, 1) == 0"}], source="synthetic"),
    ]


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    texts = [f"What is {i} plus {i * 7 % 13}? The answer is \\boxed{{{i + i * 7 % 13}}}. def add(a, b): return a + b"
             for i in range(300)]
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model", texts, vocab_size=300)


def _rows(out_dir):
    return [json.loads(line) for line in (out_dir / "samples.jsonl").read_text().splitlines()]


def test_evaluate_tiny_model_writes_consistent_files(tiny_path, tmp_path):
    problems = _problems()
    config = EvalConfig(n=2, k=[1, 2, 4], max_new_tokens=8, batch_size=4, samples_per_chunk=4, progress=False)
    summary = evaluate(tiny_path, problems, config, tmp_path / "eval")
    rows = _rows(tmp_path / "eval")
    assert len(rows) == len(problems) * config.n
    assert all(set(row) == set(SAMPLE_KEYS) for row in rows)
    assert [(r["problem_id"], r["sample_index"]) for r in rows] == [(p.id, s) for p in problems for s in range(2)]
    assert json.loads((tmp_path / "eval" / "summary.json").read_text()) == summary
    for key in ("pass@1", "pass@2", "cons@2", "mean_tokens", "cutoff_ratio", "n_problems", "n_samples", "pass@1_ci",
                "by_domain", "by_subdomain", "by_difficulty"):
        assert key in summary, key
    assert "pass@4" not in summary and any("pass@4" in note for note in summary["notes"])
    assert summary["n_problems"] == 3 and summary["n_samples"] == 6
    per_problem = [sum(r["correct"] for r in rows if r["problem_id"] == p.id) / 2 for p in problems]
    assert summary["pass@1"] == pytest.approx(sum(per_problem) / 3)
    assert summary["mean_tokens"] == pytest.approx(sum(r["tokens"] for r in rows) / 6)
    assert summary["cutoff_ratio"] == pytest.approx(sum(r["finish_reason"] == "length" for r in rows) / 6)
    assert all(1 <= r["tokens"] <= 8 for r in rows)
    assert set(summary["by_domain"]) == {"math", "code"} and set(summary["by_difficulty"]) == {"1", "2"}
    assert summary["by_domain"]["math"]["n_samples"] == 4 and summary["by_subdomain"]["functions"]["n_problems"] == 1
    lo, hi = summary["pass@1_ci"]
    assert lo <= summary["pass@1"] <= hi


class ScriptedGenerator:
    """Returns fixed responses per problem (looked up by rendered prompt): a known-answer stand-in for a model."""

    def __init__(self, tokenizer, script: dict[str, list[tuple[str, str]]]):
        self.tokenizer, self.script, self.calls = tokenizer, script, []

    def generate(self, prompts: list[str], sampling: SamplingParams) -> list[Completion]:
        self.calls.append((list(prompts), sampling))
        out = []
        for pi, prompt in enumerate(prompts):
            for si, (text, reason) in enumerate(self.script[prompt][:sampling.n]):
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                out.append(Completion(pi, si, ids, text, [0.0] * len(ids), reason))
        return out


def test_evaluate_scores_known_responses_end_to_end(tiny_path, tmp_path):
    tokenizer = load_tokenizer(tiny_path)
    problems = _problems()
    box = "<think>hmm</think> The answer is \\boxed{{{}}}."
    responses = {
        "m1": [(box.format(4), "stop"), (box.format(5), "stop"), (box.format(4), "stop"), ("\\boxed{4}", "length")],
        "m2": [(box.format(3), "stop"), (box.format(3), "stop"), (box.format(7), "stop"), (box.format(7), "stop")],
        "c1": [(ADD_OK, "stop"), (ADD_BAD, "stop"), (ADD_BAD, "stop"), (ADD_BAD, "length")],
    }
    script = {render_prompt(tokenizer, p): responses[p.id] for p in problems}
    generator = ScriptedGenerator(tokenizer, script)
    config = EvalConfig(n=4, k=[1, 2, 8], samples_per_chunk=8, progress=False, score_workers=4)
    summary = evaluate(generator, problems, config, tmp_path / "eval")

    assert [len(prompts) for prompts, _ in generator.calls] == [2, 1]  # 8 samples per chunk = 2 problems
    seeds = [sampling.seed for _, sampling in generator.calls]
    assert all(s.n == 4 and s.top_p == 0.95 and s.temperature == 1.0 for _, s in generator.calls)
    assert len(set(seeds)) == 2
    rows = _rows(tmp_path / "eval")
    assert [r["correct"] for r in rows] == [True, False, True, False, False, False, True, True,
                                            True, False, False, False]
    assert rows[3]["answer"] is None  # no </think>: nothing is graded
    assert rows[0]["answer"] == "4" and rows[8]["answer"].startswith("def add")
    # per problem: m1 c=2, m2 c=2, c1 c=1 out of n=4
    assert summary["pass@1"] == pytest.approx((0.5 + 0.5 + 0.25) / 3, abs=1e-12)
    assert summary["pass@2"] == pytest.approx((5 / 6 + 5 / 6 + 0.5) / 3, abs=1e-12)
    assert summary["cons@4"] == pytest.approx(1 / 3)  # m1 right (4 beats 5), m2 tie 3/7 -> 3 wrong, c1 wrong
    assert summary["cutoff_ratio"] == pytest.approx(2 / 12)
    assert summary["by_domain"]["math"]["pass@1"] == pytest.approx(0.5)
    assert summary["by_domain"]["math"]["cons@4"] == pytest.approx(0.5)
    assert summary["by_domain"]["code"]["pass@1"] == pytest.approx(0.25)
    assert summary["by_domain"]["code"]["pass@2"] == pytest.approx(0.5)
    assert summary["by_difficulty"]["1"]["pass@1"] == pytest.approx(0.5)
    assert summary["by_difficulty"]["2"]["pass@1"] == pytest.approx(0.375)
    assert summary["mean_tokens"] == pytest.approx(sum(r["tokens"] for r in rows) / 12)
    assert any("pass@8" in note for note in summary["notes"])


def test_format_summary_table():
    base = {"pass@1": 0.5, "by_domain": {"math": {"pass@1": 0.6}, "code": {"pass@1": 0.25}},
            "by_difficulty": {"10": {"pass@1": 0.1}, "2": {"pass@1": 0.7}}}
    other = {"pass@1": 0.125, "by_domain": {"math": {"pass@1": 0.2}}, "by_difficulty": {"2": {"pass@1": 0.3}}}
    table = format_summary_table({"base": base, "sft": other})
    assert [c.header for c in table.columns] == ["slice", "base", "sft"]
    assert table.row_count == 5
    console = Console(record=True, width=120)
    console.print(table)
    text = console.export_text()
    assert "domain code" in text and "50.0" in text and "12.5" in text and "-" in text
    assert text.index("difficulty 2") < text.index("difficulty 10")


def test_evaluate_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        evaluate(("model", "tok"), [], EvalConfig(), tmp_path)
    with pytest.raises(ValueError, match="top_p"):
        evaluate(("model", "tok"), _problems(), EvalConfig(top_p=0), tmp_path)
