"""Stage ``sft``: fine-tune a checkpoint on the reference traces of a problem file, optionally after the
curriculum filters of SFT stage 2 (SPEC 2.1); writes ``model/``, ``checkpoints/step-*/``, ``metrics.jsonl``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from vibethinker.sft.config import CurriculumConfig, SFTConfig
from vibethinker.stages.base import (ProblemSelection, RopeOverride, StageBase, StageContext, StageKind, WindowNeed,
                                     config_of, inherits, load_stage_problems, require_exists, sampling_need)


class SFTStage(StageBase, SFTConfig, ProblemSelection, RopeOverride):
    """Supervised fine-tuning; every ``SFTConfig`` field can be set here directly."""

    kind: Literal["sft"]
    model: str = Field(description="Starting checkpoint: '@stage' or a local HF checkpoint folder.")
    data: str = Field(description="Problems with reference traces (JSONL/parquet).")
    curriculum: CurriculumConfig | None = Field(None, description=(
        "Curriculum filters of SFT stage 2 (SPEC 2.1): keep traces of at least min_trace_tokens and, with a "
        "difficulty_reference model, only problems it gets wrong at least min_error_rate of the time."))


def run(stage: SFTStage, ctx: StageContext) -> dict:
    from vibethinker.model.checkpoint import load_tokenizer
    from vibethinker.model.window import stage_model
    from vibethinker.sft.curriculum import apply_curriculum
    from vibethinker.sft.trainer import train_sft
    from vibethinker.utils.files import write_json_atomic

    model = require_exists(ctx.resolve("model", stage.model), "model", stage)
    problems = load_stage_problems(stage, ctx)
    curriculum = None
    if stage.curriculum is not None:
        settings = stage.curriculum
        if settings.difficulty_reference:  # may be '@stage', like every model field of a recipe
            reference = require_exists(ctx.resolve("curriculum.difficulty_reference", settings.difficulty_reference),
                                       "curriculum.difficulty_reference", stage)
            settings = settings.model_copy(update={"difficulty_reference": str(reference)})
        with stage_model(max_model_len=settings.sampling.max_model_len):  # the reference keeps its own RoPE
            problems, curriculum = apply_curriculum(problems, settings, load_tokenizer(model), ctx.stage_dir)
        write_json_atomic(ctx.stage_dir / "curriculum.json", curriculum)
        if not problems:
            raise ValueError(f"stage {stage.name!r}: the curriculum filters left no problem ({curriculum})")
    with stage_model(stage.rope_scaling):  # the trainer's load_model applies it
        summary = train_sft(model, problems, config_of(stage, SFTConfig), ctx.stage_dir)
    if curriculum is not None:
        summary = {**summary, "curriculum": {"problems_in": curriculum["problems_in"],
                                             "problems_kept": curriculum["problems_kept"]}}
    return summary


def window_needs(stage: SFTStage) -> list[WindowNeed]:
    needs = [WindowNeed("seq_len", stage.seq_len, stage.seq_len)]
    if stage.curriculum is not None and stage.curriculum.difficulty_reference:
        needs.append(sampling_need(stage.curriculum.sampling, "curriculum.sampling", "curriculum.difficulty_reference",
                                   stage_rope=False))
    return needs


def note(summary: dict) -> str:
    if "steps" not in summary:
        return ""
    kept = summary.get("curriculum")
    curriculum = f"; curriculum kept {kept['problems_kept']}/{kept['problems_in']} problems" if kept else ""
    return f"{summary['steps']} steps, {summary['samples']} samples, final loss {summary['final_loss']:.3f}{curriculum}"


def markdown(run_dir: Path, name: str, entry: dict) -> list[str]:
    from vibethinker.report.plots import plot_training_curve

    metrics = run_dir / name / "metrics.jsonl"
    if metrics.exists() and plot_training_curve(metrics, run_dir / f"{name}_loss.png"):
        return [f"## Training curve: {name}", "", f"![{name} loss]({name}_loss.png)", ""]
    return []


KIND = StageKind(SFTStage, run, writes=("model/", "checkpoints/step-*/", "metrics.jsonl", "sft_summary.json",
                                        "curriculum.json"), artifact="model", note=note, markdown=markdown,
                 window_needs=window_needs, output_window=inherits("model"))
