"""Stage effects: the change in pass@1 between consecutive evaluations, its paired interval, CLR and fusion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vibethinker.report.effects import effects_lines, stage_effects

EVAL_KINDS = {"eval"}


def _write_eval(run: Path, name: str, correct: dict[str, list[bool]], ci: list[float], tokens: float) -> dict:
    (run / name).mkdir(parents=True)
    rows = [{"problem_id": pid, "correct": c} for pid, flags in correct.items() for c in flags]
    (run / name / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pass1 = sum(r["correct"] for r in rows) / len(rows)
    return {"kind": "eval", "status": "done",
            "summary": {"pass@1": pass1, "pass@1_ci": ci, "pass@4": min(1.0, pass1 * 1.5), "mean_tokens": tokens}}


def _run(tmp_path: Path) -> tuple[Path, dict]:
    problems = [f"p{i}" for i in range(40)]
    before = {p: [i % 4 == 0, False, False, False] for i, p in enumerate(problems)}  # 1 of 4 on a quarter
    after = {p: [i % 4 == 0, i % 2 == 0, False, False] for i, p in enumerate(problems)}  # gains on half of them
    stages = {
        "eval_sft": _write_eval(tmp_path, "eval_sft", before, [0.03, 0.10], 90.0),
        "rl": {"kind": "rl", "status": "done", "summary": {}},
        "eval_rl": _write_eval(tmp_path, "eval_rl", after, [0.12, 0.26], 80.0),
        "distill": {"kind": "distill", "status": "done", "summary": {}},
        "eval_distill": _write_eval(tmp_path, "eval_distill", after, [0.12, 0.26], 75.0),
    }
    (tmp_path / "eval_distill" / "clr.json").write_text(json.dumps(
        {"summary": {"pass@1": 0.19, "majority_pass@1": 0.20, "clr_pass@1": 0.25, "n_problems": 40}}))
    return tmp_path, stages


def test_effects_between_consecutive_evaluations(tmp_path):
    run, stages = _run(tmp_path)
    effects = stage_effects(run, stages, lambda e: e["kind"] in EVAL_KINDS)
    rl, distill = effects["evals"]
    assert rl["stages"] == ["rl"] and distill["stages"] == ["distill"]
    assert rl["delta"] == pytest.approx(0.1875 - 0.0625)
    assert rl["half_width_after"] == pytest.approx(0.07) and rl["beyond_interval"]
    assert rl["paired_problems"] == 40
    low, high = rl["delta_ci"]
    assert 0 < low < rl["delta"] < high  # every problem either gains or stays: the paired interval excludes 0
    assert distill["delta"] == 0 and not distill["beyond_interval"] and distill["delta_ci"] == [0.0, 0.0]
    assert (distill["mean_tokens_before"], distill["mean_tokens_after"]) == (80.0, 75.0)
    assert effects["clr"]["eval_distill"]["clr_minus_majority"] == pytest.approx(0.05)


def test_effects_lines_name_every_stage_and_the_verdict(tmp_path):
    run, stages = _run(tmp_path)
    text = "\n".join(effects_lines(stage_effects(run, stages, lambda e: e["kind"] in EVAL_KINDS)))
    assert "| rl | 0.062 -> 0.188 | +0.125 | 0.070 |" in text and "| yes |" in text
    assert "| distill | 0.188 -> 0.188 | +0.000 |" in text and "| no |" in text
    assert "CLR on `eval_distill`: 0.250 vs majority vote 0.200 (+0.050)" in text


def test_fusion_effect_is_read_from_the_probe_summary(tmp_path):
    probe = {"checkpoints": {"step-000010": {"pass@4": 0.4, "pass@1": 0.2}, "step-000020": {"pass@4": 0.5,
                                                                                           "pass@1": 0.3}},
             "fused": {"pass@4": 0.55, "pass@1": 0.3}, "last_step": 20, "best_step": 20}
    stages = {"fuse": {"kind": "probe_fuse", "status": "done", "summary": {"probe": probe}}}
    effects = stage_effects(tmp_path, stages, lambda e: e["kind"] in EVAL_KINDS)
    assert effects["fusion"]["fuse"] is probe
    assert "fused pass@4 0.550 vs last checkpoint 0.500" in "\n".join(effects_lines(effects))
