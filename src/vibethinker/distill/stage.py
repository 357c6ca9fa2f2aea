"""Stage ``distill`` (SPEC 2.6): offline self-distillation of the RL phases' checkpoints into one student.

Everything is written by :func:`run_self_distillation` into the stage folder; the distilled student is
``sft/model``, which is what ``@NAME`` of this stage refers to.
"""

from __future__ import annotations

from vibethinker.distill.config import DistillConfig
from vibethinker.distill.run import run_self_distillation
from vibethinker.pipeline import StageContext, load_stage_problems, require_exists
from vibethinker.recipe import DistillStage


def run_distill_stage(stage: DistillStage, ctx: StageContext) -> dict:
    student = require_exists(ctx.resolve("student", stage.student), "student", stage)
    teachers = [require_exists(ctx.resolve("teachers", t), "teacher", stage) for t in stage.teachers]
    problems = load_stage_problems(stage, ctx)
    config = DistillConfig(**{name: getattr(stage, name) for name in DistillConfig.model_fields})
    summary = run_self_distillation(student, teachers, problems, config, ctx.stage_dir)
    return {key: value for key, value in summary.items() if key not in ("per_teacher",)} | {
        "teachers": [str(t) for t in teachers]}
