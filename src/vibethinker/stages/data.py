"""Stage ``data``: write ``train.jsonl`` / ``probe.jsonl`` / ``test.jsonl`` into the stage folder.

Either the embedded synthetic suite (``suite:``), or the user's own training file (``train:``) with evaluation
sets (``eval:``) copied beside it, after dropping every training problem that shares a 10-gram with an evaluation
problem (SPEC 2.1); ``decontamination.json`` lists each drop with the shared words.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vibethinker.stages.base import RecipeError, StageBase, StageContext, StageKind, require_exists


class SuiteSettings(BaseModel):
    """The recipe's view of :class:`vibethinker.data.synthetic.suite.SuiteConfig`: equal sizes per sub-domain."""

    model_config = ConfigDict(extra="forbid")
    seed: int | None = Field(None, description="Seed of the generators (default: the recipe seed).")
    train_per_subdomain: int = Field(1000, gt=0, description="Training problems per sub-domain, spread over 1-5.")
    probe_per_subdomain: int = Field(20, ge=0, multiple_of=5, description=(
        "Probing problems per sub-domain (Pass@K probing, SPEC 2.2); equal for every difficulty."))
    test_per_subdomain: int = Field(50, gt=0, multiple_of=5, description=(
        "Held-out problems per sub-domain; equal for every difficulty so an easy-only model cannot pass."))
    subdomains: list[str] | None = Field(None, description="Restrict to these sub-domains (default: all).")


class DataStage(StageBase):
    """Writes ``train.jsonl``, ``probe.jsonl``, ``test.jsonl``: the embedded suite, or given files decontaminated."""

    kind: Literal["data"]
    suite: SuiteSettings | None = Field(None, description="Generate the embedded synthetic suite.")
    train: str | None = Field(None, description="Your own training problems (JSONL/parquet) instead of the suite.")
    eval: dict[str, str] = Field(default_factory=dict, description=(
        "Evaluation sets by split name (e.g. test, probe); training problems sharing a 10-gram with any of them "
        "are dropped (SPEC 2.1)."))

    @model_validator(mode="after")
    def _one_source(self) -> DataStage:
        if (self.suite is None) == (self.train is None):
            raise ValueError("give exactly one of 'suite' (embedded synthetic data) or 'train' (a file)")
        return self


def run(stage: DataStage, ctx: StageContext) -> dict:
    from dataclasses import asdict

    from vibethinker.data.decontam import decontaminate
    from vibethinker.data.records import load_problems, write_jsonl
    from vibethinker.data.synthetic import ALL_SUBDOMAINS, SUBDOMAINS
    from vibethinker.data.synthetic.suite import SuiteConfig, generate_suite, write_suite
    from vibethinker.utils.files import write_json_atomic

    if stage.suite is not None:
        settings = stage.suite
        subdomains = tuple(settings.subdomains or SUBDOMAINS)
        unknown = set(subdomains) - set(ALL_SUBDOMAINS)
        if unknown:  # extra sub-domains (word_arithmetic) are accepted by name, never added by default
            raise RecipeError(f"stage {stage.name!r}: unknown sub-domains {sorted(unknown)}; "
                              f"known: {', '.join(ALL_SUBDOMAINS)}")
        config = SuiteConfig.uniform(
            seed=ctx.seed if settings.seed is None else settings.seed, train=settings.train_per_subdomain,
            probe=settings.probe_per_subdomain, test=settings.test_per_subdomain, subdomains=subdomains)
        suite = generate_suite(config)
        write_suite(suite, ctx.stage_dir)
        return {"sizes": suite.stats["counts"], "dropped": suite.stats["dropped"]}

    train = load_problems(require_exists(ctx.resolve("train", stage.train), "training data", stage))
    eval_sets = {name: load_problems(require_exists(ctx.resolve(f"eval.{name}", path), f"eval set {name}", stage))
                 for name, path in stage.eval.items()}
    result = decontaminate(train, eval_sets)
    write_jsonl(ctx.stage_dir / "train.jsonl", result.kept)
    for name, problems in eval_sets.items():
        write_jsonl(ctx.stage_dir / f"{name}.jsonl", problems)
    write_json_atomic(ctx.stage_dir / "decontamination.json",
                      {**result.summary(), "drops": [asdict(d) for d in result.dropped]})
    return {"sizes": {"train": len(result.kept), **{n: len(p) for n, p in eval_sets.items()}},
            "dropped": {"decontamination": len(result.dropped)}}


def note(summary: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in summary.get("sizes", {}).items())


KIND = StageKind(DataStage, run, writes=("train.jsonl", "probe.jsonl", "test.jsonl", "decontamination.json"),
                 note=note)
