"""The GPU-scale synthetic recipe: it validates, its model has 50-150M parameters, it chains every stage of the
pipeline in order, and (shrunk to CPU size) runs end to end through the CLI with every stage's artefacts."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from transformers import Qwen2Config, Qwen2ForCausalLM
from typer.testing import CliRunner

from conftest import make_easy_problems, train_warm_model

from vibethinker.cli import app
from vibethinker.data.records import write_jsonl
from vibethinker.data.synthetic.suite import SuiteConfig, generate_suite
from vibethinker.recipe import bundled_recipe_path, load_recipe

NAME = "synthetic-h200"


def _previous_model(stages, index):
    """The name of the last model-producing stage before ``index``."""
    return next(s.name for s in reversed(stages[:index]) if s.kind not in ("data", "eval"))


def test_model_has_50_to_150m_parameters():
    stage = load_recipe(bundled_recipe_path(NAME)).stage("base")
    shape = stage.architecture.model_dump()
    shape.pop("rope_theta")
    with torch.device("meta"):  # the shape only: no memory, no initialisation
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=stage.vocab_size, **shape))
    count = sum(p.numel() for p in model.parameters())
    assert 50e6 <= count <= 150e6, count


def test_the_suite_can_give_the_problems_the_recipe_asks_for():
    settings = load_recipe(bundled_recipe_path(NAME)).stage("data").suite
    suite = generate_suite(SuiteConfig.uniform(seed=0, train=settings.train_per_subdomain,
                                               probe=settings.probe_per_subdomain, test=settings.test_per_subdomain))
    assert len(suite.splits["train"]) == 5 * settings.train_per_subdomain


def test_every_stage_of_the_recipe_in_order():
    recipe = load_recipe(bundled_recipe_path(NAME))
    stages = recipe.stages
    models = [s for s in stages if s.kind not in ("data", "eval")]
    assert [s.kind for s in models] == ["init_model", "sft", "sft", "probe_fuse", "rl", "rl", "rl", "distill"]
    sft1, sft2, fuse, rl_math, rl_l2s, rl_code, distill = models[1:]
    assert sft1.curriculum is None and sft2.curriculum is not None and sft2.save_every > 0
    assert fuse.sft == f"@{sft2.name}" and fuse.k < fuse.n
    assert (rl_math.domains, rl_math.long2short, rl_math.mgpo_lambda) == (["math"], False, 2.0)
    assert (rl_l2s.domains, rl_l2s.long2short) == (["math"], True)
    assert rl_code.domains == ["code"]
    assert distill.student == f"@{rl_code.name}" and f"@{rl_code.name}" in distill.teachers
    for index, stage in enumerate(stages):
        start = getattr(stage, "model", None) or getattr(stage, "sft", None)
        if stage.kind in ("sft", "probe_fuse", "rl", "eval") and start and start.startswith("@"):
            assert start == f"@{_previous_model(stages, index)}", stage.name  # each starts from the latest model
        if stage.kind in ("sft", "rl", "distill"):
            assert stage.data == "@data/train.jsonl", stage.name  # never the held-out files
    evals = [s for s in stages if s.kind == "eval"]
    # every model stage is evaluated, except the two SFT stages whose product is evaluated after fusion
    assert [s.model for s in evals] == [f"@{s.name}" for s in models if s.kind != "sft"]
    assert all(s.data == "@data/test.jsonl" for s in evals)
    assert evals[-1].clr is not None and evals[-1].model == f"@{distill.name}"


def _shrink(recipe: dict) -> dict:
    """The same stages at CPU-test size: a tiny model, a few problems, one or two steps each, short generations."""
    for stage in recipe["stages"]:
        kind = stage["kind"]
        if kind == "data":
            stage["suite"] = {"train_per_subdomain": 40, "probe_per_subdomain": 5, "test_per_subdomain": 5}
        elif kind == "init_model":
            stage["vocab_size"] = 400
            stage["architecture"] = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                     "num_attention_heads": 2, "num_key_value_heads": 1,
                                     "max_position_embeddings": 512}
        elif kind == "sft":
            stage.update(epochs=0.2, rows_per_micro_batch=16, seq_len=512)
            if stage.get("save_every"):
                stage["save_every"] = 1
        elif kind == "probe_fuse":
            stage.update(k=2, n=2, max_new_tokens=16, batch_size=64)
        elif kind == "rl":
            stage.update(max_steps=1, prompts_per_step=2, group_size=2, max_new_tokens=16, micro_batch_size=4,
                         generation_batch_size=8, eval_every=1, eval_samples=1, save_every=0)
        elif kind == "distill":
            stage.update(max_problems=4, samples_per_problem=2, max_new_tokens=16, min_tokens=0,
                         generation_batch_size=16, score_batch_size=8)
            stage["sft"].update(rows_per_micro_batch=4, seq_len=512)
        elif kind == "eval":
            stage.update(n=2, k=[1, 2], max_new_tokens=16, batch_size=64)
            if stage.get("clr"):
                stage["clr"] = {"source": "tool", "k": 2, "repetitions": 1}
    return recipe


def _run(tmp_path, name: str, stages: list[dict]) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "seed": 0, "stages": stages}, sort_keys=False), encoding="utf-8")
    out = tmp_path / name
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    stages_done = json.loads((out / "manifest.json").read_text())["stages"]
    assert list(stages_done) == [s["name"] for s in stages]
    assert {s["status"] for s in stages_done.values()} == {"done"}
    return out


def test_shrunk_recipe_runs_every_stage_end_to_end(tmp_path):
    stages = _shrink(yaml.safe_load(bundled_recipe_path(NAME).read_text(encoding="utf-8")))["stages"]
    split = next(i for i, s in enumerate(stages) if s["kind"] == "distill")
    out = _run(tmp_path, "pipeline", stages[:split])
    assert (out / "fuse" / "model" / "fusion.json").exists()
    for phase in ("rl_math", "rl_l2s", "rl_code"):
        assert (out / phase / "validation.jsonl").exists()
        assert (out / phase / "model" / "model.safetensors").exists()
    assert json.loads((out / "rl_code" / "rl_summary.json").read_text())["problems"] == 40  # code only
    report = (out / "report.md").read_text()
    for name in ("eval_base", "eval_sft", "eval_rl_math", "eval_rl_l2s", "eval_rl_code"):
        assert f"| {name} |" in report

    # A from-scratch model this small never finishes a correct trace, so self-distillation and the CLR evaluation
    # run with their recipe settings on a model warmed up on easy sums (its own tokenizer: student = teacher).
    problems = make_easy_problems()
    warm = train_warm_model(tmp_path / "warm", problems, epochs=25) / "model"
    data = str(write_jsonl(tmp_path / "easy.jsonl", problems))
    distill, final = (dict(s) for s in stages[split:])
    distill.update(student=str(warm), teachers=[str(warm)], data=data, max_new_tokens=40)
    final.update(data=data, max_new_tokens=40)
    out = _run(tmp_path, "distill", [distill, final])
    assert (out / "distill" / "sft" / "model" / "model.safetensors").exists()
    assert json.loads((out / "eval_distill" / "clr.json").read_text())["summary"]["n_problems"] == len(problems)
    assert "CLR vs majority vote: eval_distill" in (out / "report.md").read_text()
