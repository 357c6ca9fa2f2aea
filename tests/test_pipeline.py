"""A miniature recipe end to end through the CLI: data -> tokenizer/model -> eval -> SFT -> eval -> report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import make_easy_problems, mini_recipe, train_warm_model

from vibethinker.cli import app
from vibethinker.data.records import load_problems

MINI = mini_recipe("mini", """\
  - name: sft
    kind: sft
    model: "@base"
    data: "@data/train.jsonl"
    learning_rate: 0.003
    epochs: 1
    seq_len: 512
    packing: false
    rows_per_micro_batch: 16
    save_every: 2
  - name: eval_sft
    kind: eval
    model: "@sft"
    data: "@data/test.jsonl"
    n: 2
    k: [1, 2]
    max_new_tokens: 24
    clr: {k: 2, repetitions: 2}
""")


@pytest.fixture()
def recipe_file(tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_text(MINI)
    return path


def test_miniature_recipe_end_to_end(tmp_path, recipe_file):
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(recipe_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["status"] for s in manifest["stages"].values()] == ["done"] * 4
    assert len(load_problems(out / "data" / "test.jsonl")) == 25
    assert (out / "sft" / "model" / "model.safetensors").exists()
    assert sorted(p.name for p in (out / "sft" / "checkpoints").iterdir())[0] == "step-000002"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stages"]["eval_sft"]["n_samples"] == 50
    assert set(summary["stages"]["eval_sft"]["by_difficulty"]) == {"1", "2", "3", "4", "5"}
    report = (out / "report.md").read_text()
    assert "| eval_sft |" in report and "difficulty 5" in report and "sft_loss.png" in report
    assert (out / "sft_loss.png").exists()
    assert "eval_sft" in result.output
    clr = json.loads((out / "eval_sft" / "clr.json").read_text())["summary"]
    assert clr["n_problems"] == 20 and clr["config"]["claim_source"] == "tool"  # the 20 math problems, not code
    assert summary["stages"]["eval_sft"]["clr"]["majority_pass@1"] == clr["majority_pass@1"]
    assert "CLR vs majority vote: eval_sft" in report
    page = (out / "report.html").read_text()
    assert "CLR vs majority vote vs pass@1" in page and "claim source" in page

    # a second run skips every finished stage
    rerun = runner.invoke(app, ["run", str(recipe_file), "--out", str(out)])
    assert rerun.exit_code == 0 and rerun.output.count("skipped") == 4

    # a changed stage runs again from scratch (no stale checkpoints), and so does everything after it
    recipe_file.write_text(MINI.replace("learning_rate: 0.003", "learning_rate: 0.002"))
    changed = runner.invoke(app, ["run", str(recipe_file), "--out", str(out)])
    assert changed.exit_code == 0 and changed.output.count("skipped") == 2, changed.output
    assert "resuming" not in changed.output

    # one stage alone, its model given as a path
    alone = runner.invoke(app, ["run", str(recipe_file), "--out", str(out), "--stage", "eval_sft",
                                "--input", f"model={out / 'base' / 'model'}"])
    assert alone.exit_code == 0, alone.output
    assert json.loads((out / "manifest.json").read_text())["stages"]["eval_sft"]["summary"]["pass@1"] == 0.0


def test_interrupted_sft_stage_resumes(tmp_path, recipe_file, monkeypatch):
    import vibethinker.sft.trainer as sft_stage  # the sft stage imports train_sft from here when it runs

    out = tmp_path / "run"
    real_train = sft_stage.train_sft

    def interrupted(*args, **kwargs):
        real_train(*args, **kwargs, stop_after_steps=1)
        raise RuntimeError("simulated crash after step 1")

    monkeypatch.setattr(sft_stage, "train_sft", interrupted)
    with pytest.raises(RuntimeError, match="simulated crash"):
        CliRunner().invoke(app, ["run", str(recipe_file), "--out", str(out)], catch_exceptions=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["sft"]["status"] == "running"
    assert (out / "sft" / "checkpoints" / "step-000001" / "trainer_state.pt").exists()

    monkeypatch.setattr(sft_stage, "train_sft", real_train)
    result = CliRunner().invoke(app, ["run", str(recipe_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["sft"]["status"] == "done" and manifest["stages"]["sft"]["summary"]["steps"] > 1


def test_cli_eval_command_writes_documented_files(tmp_path, tiny_checkpoint, addition_problems):
    from vibethinker.data.records import write_jsonl

    data = write_jsonl(tmp_path / "problems.jsonl", addition_problems[:3])
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["eval", "--model", tiny_checkpoint, "--data", str(data), "--n", "4",
                                      "--k", "1,4", "--out", str(out), "--max-new-tokens", "8", "--clr", "tool"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "clr.json").read_text())["summary"]["n_problems"] == 3
    summary = json.loads((out / "summary.json").read_text())
    for key in ("pass@1", "pass@4", "cons@4", "mean_tokens", "cutoff_ratio", "by_domain"):
        assert key in summary
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and {"problem_id", "response", "answer", "correct", "tokens", "finish_reason"} <= set(rows[0])


def test_cli_reports_bad_input_clearly(tmp_path, recipe_file):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "domain": "math"}\n')
    result = CliRunner().invoke(app, ["eval", "--model", str(tmp_path), "--data", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output
    recipe_file.write_text(MINI.replace("n: 2", "n: -2"))
    result = CliRunner().invoke(app, ["run", str(recipe_file), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "mini.yaml:" in result.output and "stages.3.n" in result.output


def test_rl_stage_runs_a_phase_after_sft(tmp_path):
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(MINI.split("  - name: eval_sft")[0] + """  - name: rl_math
    kind: rl
    model: "@sft"
    data: "@data/train.jsonl"
    group_size: 2
    prompts_per_step: 2
    max_steps: 2
    max_new_tokens: 16
    learning_rate: 0.001
    micro_batch_size: 2
""")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["rl_math"]["status"] == "done"
    assert (out / "rl_math" / "model" / "model.safetensors").exists()
    rows = [json.loads(line) for line in (out / "rl_math" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]


def test_instruct_rl_stage_uses_the_instruct_reward_and_refuses_mgpo_weighting(tmp_path, tiny_checkpoint):
    from vibethinker.data.records import Problem, write_jsonl

    problems = [Problem(id=f"inst-{i}", domain="instruct", subdomain="format", difficulty=1, source="test",
                        problem=f"Write {i + 2} words about sums, all lowercase.",
                        meta={"constraints": [{"kind": "letter_case", "case": "lower"}]}) for i in range(4)]
    data = write_jsonl(tmp_path / "instruct.jsonl", problems)
    stage = f"""name: instruct
stages:
  - name: rl_instruct
    kind: rl
    model: {tiny_checkpoint}
    data: {data}
    reward: instruct
    rule_weight: 1.0
    group_size: 2
    prompts_per_step: 2
    max_steps: 1
    max_new_tokens: 12
    micro_batch_size: 4
    require_think: false
"""
    recipe = tmp_path / "instruct.yaml"
    recipe.write_text(stage)  # mgpo_lambda keeps its MGPO default of 2: refused for a graded reward
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "mgpo_lambda" in result.output
    recipe.write_text(stage + "    mgpo_lambda: 0\n")
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "run" / "rl_instruct" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["reward_fn/completions"] == 4  # the instruct reward scored the group, not the verifiers


def test_spectrum_stages_chain_sft_curriculum_probe_fuse_rl_and_distill(tmp_path):
    recipe = tmp_path / "spectrum.yaml"
    recipe.write_text(MINI.split("  - name: eval_sft")[0] + """  - name: sft_hard
    kind: sft
    model: "@sft"
    data: "@data/train.jsonl"
    curriculum: {min_trace_tokens: 84}
    learning_rate: 0.002
    epochs: 1
    seq_len: 512
    packing: false
    rows_per_micro_batch: 8
    save_every: 2
  - name: fuse
    kind: probe_fuse
    sft: "@sft_hard"
    data: "@data/probe.jsonl"
    k: 2
    n: 2
    max_new_tokens: 16
  - name: rl_math
    kind: rl
    model: "@fuse"
    data: "@data/train.jsonl"
    domains: [math]
    group_size: 2
    prompts_per_step: 2
    max_steps: 1
    max_new_tokens: 16
    micro_batch_size: 4
""")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    curriculum = json.loads((out / "sft_hard" / "curriculum.json").read_text())
    assert 0 < curriculum["problems_kept"] < curriculum["problems_in"]
    assert {(out / "fuse" / f).exists() for f in ("probing.json", "probing.md", "probing.png")} == {True}
    assert stages["fuse"]["summary"]["checkpoints_probed"] >= 2
    probe = stages["fuse"]["summary"]["probe"]  # the fused model probed like the checkpoints, for the report
    assert len(probe["checkpoints"]) == stages["fuse"]["summary"]["checkpoints_probed"]
    assert 0 <= probe["fused"]["pass@1"] <= probe["fused"][f"pass@{stages['fuse']['summary']['k']}"] <= 1
    assert (out / "fuse" / "fused_probe" / "probing.json").exists()
    report = (out / "report.md").read_text()
    assert "## What each stage did" in report and "Fusion (`fuse`, probing problems)" in report
    assert json.loads((out / "fuse" / "model" / "fusion.json").read_text())["weights"]
    rl_problems = json.loads((out / "rl_math" / "rl_summary.json").read_text())["problems"]
    assert rl_problems == sum(p.domain == "math" for p in load_problems(out / "data" / "train.jsonl"))


def test_distill_stage_distils_verified_teacher_traces_into_the_student(tmp_path):
    from vibethinker.data.records import write_jsonl

    problems = make_easy_problems()
    teacher = train_warm_model(tmp_path, problems, epochs=25) / "model"
    data = write_jsonl(tmp_path / "easy.jsonl", problems)
    recipe = tmp_path / "distill.yaml"
    recipe.write_text(f"""name: distill
stages:
  - name: distill
    kind: distill
    student: {teacher}
    teachers: [{teacher}]
    data: {data}
    samples_per_problem: 4
    max_new_tokens: 40
    min_tokens: 0
    keep_low_quantile: 0.0
    keep_high_quantile: 1.0
    drop_top_fraction: 0.0
    sft: {{epochs: 1, seq_len: 128, packing: false, rows_per_micro_batch: 8, save_every: 0}}
  - name: eval_distill
    kind: eval
    model: "@distill"
    data: {data}
    n: 1
    max_new_tokens: 40
""")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "manifest.json").read_text())["stages"]["distill"]["summary"]
    assert 0 < summary["kept"] <= summary["harvested"]
    assert (out / "distill" / "sft" / "model" / "model.safetensors").exists()
    assert (out / "eval_distill" / "summary.json").exists()  # @distill resolves to the distilled student


def test_stage_problem_selection_filters_domains_and_samples_across_the_file(tmp_path):
    from vibethinker.data.records import write_jsonl
    from vibethinker.pipeline import stage_context
    from vibethinker.recipe import load_recipe
    from vibethinker.stages.base import RecipeError, load_stage_problems
    from vibethinker.stages.rl import RLStage

    problems = make_easy_problems(30)
    for i, p in enumerate(problems):
        p.subdomain = "early" if i < 15 else "late"
    data = write_jsonl(tmp_path / "p.jsonl", problems)
    (tmp_path / "r.yaml").write_text(f"name: r\nseed: 3\nstages:\n  - {{name: rl, kind: rl, model: m, data: {data}}}\n")
    recipe = load_recipe(str(tmp_path / "r.yaml"))
    ctx = stage_context(recipe, tmp_path, "rl")

    def select(**kw):
        return load_stage_problems(RLStage(name="rl", kind="rl", model="m", data=str(data), **kw), ctx)

    sampled = select(max_problems=10)
    assert len(sampled) == 10 and {p.subdomain for p in sampled} == {"early", "late"}  # not just the file head
    assert [p.id for p in sampled] == sorted((p.id for p in sampled), key=lambda x: int(x.split("-")[1]))
    assert [p.id for p in select(max_problems=10)] == [p.id for p in sampled]  # seeded by the recipe
    assert {p.subdomain for p in select(subdomains=["late"])} == {"late"}
    with pytest.raises(RecipeError, match="no problem"):
        select(domains=["code"])
