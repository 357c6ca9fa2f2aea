"""Stage ``distill`` (SPEC 2.6): offline self-distillation of the RL phases' checkpoints into one student.

Everything is written by :func:`vibethinker.distill.run.run_self_distillation` into the stage folder; the distilled
student is ``sft/model``, which is what ``@NAME`` of this stage refers to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from vibethinker.distill.config import DistillConfig
from vibethinker.stages.base import (ProblemSelection, RopeOverride, StageBase, StageContext, StageKind, WindowNeed,
                                     config_of, inherits, load_stage_problems, require_exists, sampling_need)


class DistillStage(StageBase, DistillConfig, ProblemSelection, RopeOverride):
    """Offline self-distillation (SPEC 2.6): verified traces of the teachers, selected by S_LP under the student,
    then SFT of the student; the distilled model is ``sft/model``."""

    kind: Literal["distill"]
    student: str = Field(description="The student checkpoint ('@stage' or a folder).")
    teachers: list[str] = Field(min_length=1, description=(
        "The RL phases' checkpoints to harvest from ('@rl_math', '@rl_code', ... or folders)."))
    data: str = Field(description="Problems the teachers answer (training problems, never the eval sets).")


def run(stage: DistillStage, ctx: StageContext) -> dict:
    from vibethinker.distill.run import run_self_distillation
    from vibethinker.model.window import stage_model

    student = require_exists(ctx.resolve("student", stage.student), "student", stage)
    teachers = [require_exists(ctx.resolve("teachers", t), "teacher", stage) for t in stage.teachers]
    problems = load_stage_problems(stage, ctx)
    with stage_model(stage.rope_scaling, stage.sampling.max_model_len):  # teachers, student scoring and SFT
        summary = run_self_distillation(student, teachers, problems, config_of(stage, DistillConfig), ctx.stage_dir)
    return {key: value for key, value in summary.items() if key not in ("per_teacher",)} | {
        "teachers": [str(t) for t in teachers]}


def window_needs(stage: DistillStage) -> list[WindowNeed]:
    """Teachers sample the responses; the student scores them (S_LP, a forward pass: no engine) and trains on
    rows of sft.seq_len."""
    return [sampling_need(stage.sampling, model="teachers"),
            sampling_need(stage.sampling, model="student", engine=False),
            WindowNeed("sft.seq_len", stage.sft.seq_len, stage.sft.seq_len, model="student")]


def note(summary: dict) -> str:
    if "kept" not in summary:
        return ""
    return f"{summary['kept']} of {summary['harvested']} verified traces kept for {summary['problems']} problems"


def html(run_dir: Path, name: str, entry: dict) -> tuple[str, str, str] | None:
    from vibethinker.report.blocks import escape, section, table
    from vibethinker.utils.files import read_json

    summary = entry.get("summary") or {}
    path = run_dir / name / "selection.json"
    if not path.exists():
        return None
    data = read_json(path)
    harvest, selection = data.get("harvest", {}), data.get("selection", {})
    body = ""
    teachers = harvest.get("per_teacher", {})
    if teachers:
        keys = list(dict.fromkeys(k for counts in teachers.values() for k in counts))
        body += "<h3>Harvest per teacher</h3>" + table(["teacher", *keys],
                                                       [[t, *[c.get(k) for k in keys]] for t, c in teachers.items()])
    groups = [("all", selection)] + [(f"domain {d}", v) for d, v in selection.get("per_domain", {}).items()]
    groups += [(f"group {g}", v) for g, v in selection.get("per_group", {}).items()]
    reasons = list(dict.fromkeys(r for _, v in groups for r in v.get("removed", {})))
    rows = [[label, v.get("total"), v.get("kept"), *[v.get("removed", {}).get(r) for r in reasons],
             " – ".join(f"{b:.3f}" for b in v["band"]) if v.get("band") else None] for label, v in groups]
    body += "<h3>Selection</h3>" + table(["", "total", "kept", *[f"removed: {r}" for r in reasons], "S_LP band"], rows)
    notes = [f"quantile rule: {selection['quantile_rule']}" if selection.get("quantile_rule") else "",
             f"{summary.get('problems')} problems in the distillation set" if summary.get("problems") else ""]
    body += "".join(f"<p class=note>{escape(n)}</p>" for n in notes if n)
    return section(f"distill-{name}", f"Self-distillation selection: {name}", body)


KIND = StageKind(DistillStage, run, writes=("harvest/", "traces.jsonl", "selection.json", "distill_train.jsonl",
                                            "sft/"), artifact="sft/model", note=note, html=html,
                 window_needs=window_needs, output_window=inherits("student"))
