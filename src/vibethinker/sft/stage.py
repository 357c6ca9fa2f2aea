"""Stage ``sft``: fine-tune the given checkpoint on the traces of the given problems, optionally after the
curriculum filters of SFT stage 2 (SPEC 2.1)."""

from __future__ import annotations

from vibethinker.model.checkpoint import load_tokenizer
from vibethinker.pipeline import StageContext, load_stage_problems, require_exists
from vibethinker.recipe import SFTStage
from vibethinker.sft.config import SFTConfig
from vibethinker.sft.curriculum import apply_curriculum
from vibethinker.sft.trainer import train_sft
from vibethinker.utils.files import write_json_atomic


def run_sft_stage(stage: SFTStage, ctx: StageContext) -> dict:
    model = require_exists(ctx.resolve("model", stage.model), "model", stage)
    problems = load_stage_problems(stage, ctx)
    config = SFTConfig(**{name: getattr(stage, name) for name in SFTConfig.model_fields})
    curriculum = None
    if stage.curriculum is not None:
        settings = stage.curriculum
        if settings.difficulty_reference:  # may be '@stage', like every model field of a recipe
            reference = require_exists(ctx.resolve("curriculum.difficulty_reference", settings.difficulty_reference),
                                       "curriculum.difficulty_reference", stage)
            settings = settings.model_copy(update={"difficulty_reference": str(reference)})
        problems, curriculum = apply_curriculum(problems, settings, load_tokenizer(model), ctx.stage_dir)
        write_json_atomic(ctx.stage_dir / "curriculum.json", curriculum)
        if not problems:
            raise ValueError(f"stage {stage.name!r}: the curriculum filters left no problem ({curriculum})")
    summary = train_sft(model, problems, config, ctx.stage_dir)
    if curriculum is not None:
        summary = {**summary, "curriculum": {"problems_in": curriculum["problems_in"],
                                             "problems_kept": curriculum["problems_kept"]}}
    return summary
