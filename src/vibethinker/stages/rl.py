"""Stage ``rl``: one MGPO phase (SPEC 2.3); optional prompt filtering with the starting model, then on-policy
training; writes ``model/``, ``metrics.jsonl``, ``curves.png`` and, with filtering, ``filtering.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from vibethinker.rl.config import JudgeConfig, RLConfig
from vibethinker.stages.base import (ProblemSelection, RopeOverride, StageBase, StageContext, StageKind, config_of,
                                     inherits, load_stage_problems, require_exists, sampling_need)


class RLStage(StageBase, RLConfig, ProblemSelection, RopeOverride):
    """One MGPO phase (SPEC 2.3); chain phases as consecutive ``rl`` stages, each starting from ``@previous``."""

    kind: Literal["rl"]
    model: str = Field(description="Starting checkpoint: '@stage' or a local HF checkpoint folder.")
    data: str = Field(description="The phase's problems (JSONL/parquet); their domain selects the reward.")
    filter_samples: int = Field(0, ge=0, description=(
        "Before the phase, sample this many responses per prompt with the starting model and drop prompts solved "
        "always or never (SPEC 2.3); samples are cached in the stage folder. 0 = no filtering."))
    reward: Literal["verifier", "instruct"] = Field("verifier", description=(
        "'verifier': the domain verifiers' binary reward (SPEC 2.5); 'instruct': rule-validator fraction mixed "
        "with a rubric judge score (SPEC 2.7), a graded reward that needs mgpo_lambda: 0."))
    judge: JudgeConfig | None = Field(None, description=(
        "The rubric judge of reward 'instruct' (a local HF checkpoint or an OpenAI-compatible server); without "
        "it only the rule validators score."))
    rule_weight: float = Field(0.5, ge=0, le=1, description=(
        "Reward 'instruct': weight of the rule fraction against the judge's rubric score *(our default 0.5)*."))
    eval_data: str | None = Field(None, description=(
        "Held-out problems for validation during the phase (with eval_every > 0), e.g. '@data/test.jsonl'; never "
        "the training file."))

    @model_validator(mode="after")
    def _validation_needs_data(self) -> RLStage:
        if self.eval_every and self.eval_data is None:
            raise ValueError("eval_every > 0 needs eval_data (the held-out problems to validate on)")
        return self


def build_reward(stage: RLStage, config: RLConfig):
    """The stage's reward function; None = the domain verifiers (the trainer's default)."""
    from vibethinker.rl.instruct_reward import check_graded_config, instruct_reward
    from vibethinker.rl.judge import make_judge

    if stage.reward == "verifier":
        if stage.judge is not None:
            raise ValueError(f"stage {stage.name!r}: 'judge' is only used with reward: instruct")
        return None
    check_graded_config(config)
    judge = make_judge(stage.judge) if stage.judge else None
    return instruct_reward(judge, rule_weight=stage.rule_weight, require_think=config.require_think)


def filter_prompts(stage: RLStage, config: RLConfig, model: Path, problems: list, ctx: StageContext):
    """Drop the prompts the starting model solves always or never (SPEC 2.3); returns (kept, summary)."""
    from vibethinker.generate import make_generator
    from vibethinker.model.fingerprint import model_fingerprint
    from vibethinker.rl.filtering import estimate_and_filter
    from vibethinker.utils.files import write_json_atomic

    result = estimate_and_filter(
        lambda: make_generator(str(model), backend=config.generation_backend,
                               batch_size=config.generation_batch_size),
        problems, config.sampling_params(n=stage.filter_samples), model_fingerprint(model),
        ctx.stage_dir / "filter_cache.jsonl", require_think=config.require_think)
    summary = result.summary()
    write_json_atomic(ctx.stage_dir / "filtering.json", {**summary, "accuracy": result.accuracy})
    if not result.kept:
        raise ValueError(f"stage {stage.name!r}: prompt filtering left no problem (all solved always or never "
                         f"by {model}); {summary}")
    return result.kept, summary


def run(stage: RLStage, ctx: StageContext) -> dict:
    from vibethinker.data.records import load_problems
    from vibethinker.model.window import stage_model
    from vibethinker.rl.trainer import train_rl

    model = require_exists(ctx.resolve("model", stage.model), "model", stage)
    problems = load_stage_problems(stage, ctx)
    config = config_of(stage, RLConfig)
    reward_fn = build_reward(stage, config)  # before the stage's model settings: the judge keeps its own RoPE
    filtering = None
    # The trainer's load_model and make_generator take the stage's rope_scaling and max_model_len from here.
    with stage_model(stage.rope_scaling, stage.sampling.max_model_len):
        if stage.filter_samples:
            problems, filtering = filter_prompts(stage, config, model, problems, ctx)
        eval_problems = None
        if stage.eval_every:
            eval_problems = load_problems(require_exists(ctx.resolve("eval_data", stage.eval_data), "eval_data",
                                                         stage))
        summary = train_rl(model, problems, config, ctx.stage_dir, reward_fn=reward_fn, eval_problems=eval_problems)
    return {**summary, **({"filtering": filtering} if filtering else {})}


def note(summary: dict) -> str:
    if "steps" not in summary:
        return ""
    kept = f", {summary['filtering']['kept']} prompts kept by filtering" if summary.get("filtering") else ""
    return (f"{summary['steps']} steps x {summary['rollouts_per_step']} rollouts, reward "
            f"{summary['first_reward_mean']:.3f} -> {summary['last_reward_mean']:.3f}{kept}")


def markdown(run_dir: Path, name: str, entry: dict) -> list[str]:
    if (run_dir / name / "curves.png").exists():
        return [f"## RL curves: {name}", "", f"![{name} curves]({name}/curves.png)", ""]
    return []


KIND = StageKind(RLStage, run, writes=("model/", "checkpoints/step-*/", "metrics.jsonl", "curves.png",
                                       "validation.jsonl", "filtering.json", "filter_cache.jsonl"),
                 artifact="model", note=note, markdown=markdown,
                 window_needs=lambda stage: [sampling_need(stage.sampling)], output_window=inherits("model"))
