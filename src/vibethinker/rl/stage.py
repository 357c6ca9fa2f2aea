"""Stage ``rl``: one MGPO phase; optional prompt filtering with the starting model, then on-policy training."""

from __future__ import annotations

from vibethinker.data.records import load_problems
from vibethinker.generate import SamplingParams, make_generator
from vibethinker.pipeline import StageContext, load_stage_problems, require_exists
from vibethinker.recipe import RLStage
from vibethinker.rl.config import RLConfig
from vibethinker.rl.filtering import estimate_and_filter, model_fingerprint
from vibethinker.rl.instruct_reward import check_graded_config, instruct_reward
from vibethinker.rl.judge import make_judge
from vibethinker.rl.rewards import RewardFunction
from vibethinker.rl.trainer import train_rl
from vibethinker.utils.files import write_json_atomic


def build_reward(stage: RLStage, config: RLConfig) -> RewardFunction | None:
    """The stage's reward function; None = the domain verifiers (the trainer's default)."""
    if stage.reward == "verifier":
        if stage.judge is not None:
            raise ValueError(f"stage {stage.name!r}: 'judge' is only used with reward: instruct")
        return None
    check_graded_config(config)
    judge = make_judge(stage.judge) if stage.judge else None
    return instruct_reward(judge, rule_weight=stage.rule_weight, require_think=config.require_think)


def run_rl_stage(stage: RLStage, ctx: StageContext) -> dict:
    model = require_exists(ctx.resolve("model", stage.model), "model", stage)
    problems = load_stage_problems(stage, ctx)
    config = RLConfig(**{name: getattr(stage, name) for name in RLConfig.model_fields})
    filtering = None
    if stage.filter_samples:
        sampling = SamplingParams(n=stage.filter_samples, temperature=config.temperature, top_p=config.top_p,
                                  max_new_tokens=config.max_new_tokens, seed=config.seed)
        generator = make_generator(str(model), backend=config.generation_backend,
                                   batch_size=config.generation_batch_size)
        result = estimate_and_filter(generator, problems, sampling, model_fingerprint(model),
                                     ctx.stage_dir / "filter_cache.jsonl")
        del generator
        filtering = result.summary()
        write_json_atomic(ctx.stage_dir / "filtering.json", {**filtering, "accuracy": result.accuracy})
        if not result.kept:
            raise ValueError(f"stage {stage.name!r}: prompt filtering left no problem (all solved always or never "
                             f"by {model}); {filtering}")
        problems = result.kept
    eval_problems = None
    if stage.eval_every:
        eval_problems = load_problems(require_exists(ctx.resolve("eval_data", stage.eval_data), "eval_data", stage))
    summary = train_rl(model, problems, config, ctx.stage_dir, reward_fn=build_reward(stage, config),
                       eval_problems=eval_problems)
    return {**summary, **({"filtering": filtering} if filtering else {})}
