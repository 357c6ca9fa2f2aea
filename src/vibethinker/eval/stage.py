"""Stage ``eval``: sample and grade a model on a problem file (SPEC 3 settings, overridable in the recipe)."""

from __future__ import annotations

from vibethinker.data.records import load_problems
from vibethinker.eval.clr.run import CLRConfig, load_samples, run_clr
from vibethinker.eval.runner import EvalConfig, evaluate
from vibethinker.generate import make_generator
from vibethinker.pipeline import StageContext, require_exists
from vibethinker.recipe import EvalStage


def build_eval_config(n: int, ks: list[int], **sampling) -> EvalConfig:
    """An EvalConfig whose pass@k list always has pass@1 and only k <= n."""
    bad = [k for k in ks if k < 1 or k > n]
    if bad:
        raise ValueError(f"pass@k needs 1 <= k <= n={n}; got k={bad}")
    return EvalConfig(n=n, ks=sorted(set([1, *ks])), **sampling)


def run_eval_stage(stage: EvalStage, ctx: StageContext) -> dict:
    model = require_exists(ctx.resolve("model", stage.model), "model", stage)
    problems = load_problems(require_exists(ctx.resolve("data", stage.data), "data", stage))
    config = build_eval_config(
        n=stage.n, ks=stage.k, temperature=stage.temperature, top_p=stage.top_p, top_k=stage.top_k,
        max_new_tokens=stage.max_new_tokens, batch_size=stage.batch_size,
        seed=ctx.recipe.seed if stage.seed is None else stage.seed, require_think=stage.require_think,
    )
    summary = evaluate(str(model), problems, config, ctx.stage_dir)
    summary.pop("config", None)
    if stage.clr is not None:
        settings = stage.clr.model_dump()
        source = settings.pop("source")
        generator = make_generator(str(model), batch_size=stage.batch_size) if source == "model" else None
        clr = run_clr(problems, load_samples(ctx.stage_dir / "samples.jsonl"), source, CLRConfig(**settings),
                      generator=generator, out_dir=ctx.stage_dir)
        summary["clr"] = {key: clr[key] for key in ("clr_pass@1", "majority_pass@1", "pass@1", "n_problems")}
    return summary
