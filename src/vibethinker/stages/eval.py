"""Stage ``eval``: sample and grade a model on a problem file (SPEC 3 settings, overridable in the recipe);
writes ``samples.jsonl`` and ``summary.json``, and with ``clr`` also ``clr.json`` (SPEC 4)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from vibethinker.eval.config import CLRConfig, EvalConfig
from vibethinker.stages.base import RopeOverride, StageBase, StageContext, StageKind, config_of, require_exists, \
    sampling_need


class CLRStageSettings(CLRConfig):
    source: Literal["tool", "model"] = Field("tool", description=(
        "'tool': claims parsed from the reasoning and checked with exact arithmetic / sympy, no model call; "
        "'model': the evaluated model extracts and verifies its own claims, as in the report (SPEC 4)."))


class EvalStage(StageBase, EvalConfig, RopeOverride):
    """Samples n responses per problem and scores them (SPEC 3); every ``EvalConfig`` field can be set here."""

    kind: Literal["eval"]
    model: str = Field(description="The checkpoint: '@stage' or a local HF checkpoint folder.")
    data: str = Field(description="Problems to evaluate on (JSONL/parquet), e.g. '@data/test.jsonl'.")
    clr: CLRStageSettings | None = Field(None, description=(
        "Also run CLR (SPEC 4) on the samples: answers weighted by the reliability of their claims, compared with "
        "majority vote and plain pass@1 on the same draws; writes clr.json."))

    @model_validator(mode="after")
    def _computable_k(self) -> EvalStage:
        self.check_k()
        return self


def run(stage: EvalStage, ctx: StageContext) -> dict:
    from vibethinker.data.records import load_problems
    from vibethinker.eval.clr.run import load_samples, run_clr
    from vibethinker.eval.runner import evaluate
    from vibethinker.generate import make_generator
    from vibethinker.model.window import stage_model

    model = require_exists(ctx.resolve("model", stage.model), "model", stage)
    problems = load_problems(require_exists(ctx.resolve("data", stage.data), "data", stage))
    with stage_model(stage.rope_scaling, stage.sampling.max_model_len):
        summary = evaluate(str(model), problems, config_of(stage, EvalConfig), ctx.stage_dir)
        summary.pop("config", None)
        if stage.clr is not None:
            settings = stage.clr.model_dump()
            source = settings.pop("source")
            generator = make_generator(str(model), batch_size=stage.batch_size) if source == "model" else None
            clr = run_clr(problems, load_samples(ctx.stage_dir / "samples.jsonl"), source, CLRConfig(**settings),
                          generator=generator, out_dir=ctx.stage_dir)
            summary["clr"] = {key: clr[key] for key in ("clr_pass@1", "majority_pass@1", "pass@1", "n_problems")}
    return summary


def note(summary: dict) -> str:
    if "pass@1" not in summary:
        return ""
    return f"pass@1 {summary['pass@1']:.3f} on {summary.get('n_problems')} problems"


KIND = StageKind(EvalStage, run, writes=("samples.jsonl", "summary.json", "clr.json"), evaluates=True, note=note,
                 window_needs=lambda stage: [sampling_need(stage.sampling)])
