"""Stage ``sft``: fine-tune the given checkpoint on the traces of the given problems."""

from __future__ import annotations

from vibethinker.data.records import load_problems
from vibethinker.pipeline import StageContext, require_exists
from vibethinker.recipe import SFTStage
from vibethinker.sft.config import SFTConfig
from vibethinker.sft.trainer import train_sft


def run_sft_stage(stage: SFTStage, ctx: StageContext) -> dict:
    model = require_exists(ctx.resolve("model", stage.model), "model", stage)
    problems = load_problems(require_exists(ctx.resolve("data", stage.data), "data", stage))
    config = SFTConfig(**{name: getattr(stage, name) for name in SFTConfig.model_fields})
    return train_sft(model, problems, config, ctx.stage_dir)
