"""Stage ``data``: write ``train.jsonl`` / ``probe.jsonl`` / ``test.jsonl`` into the stage folder.

Either the embedded synthetic suite (``suite:``), or the user's own training file (``train:``) with evaluation
sets (``eval:``) copied beside it, after dropping every training problem that shares a 10-gram with an evaluation
problem (SPEC 2.1); ``decontamination.json`` lists each drop with the shared words.
"""

from __future__ import annotations

from dataclasses import asdict

from vibethinker.data.decontam import decontaminate
from vibethinker.data.records import load_problems, write_jsonl
from vibethinker.data.synthetic import ALL_SUBDOMAINS, SUBDOMAINS
from vibethinker.data.synthetic.suite import SuiteConfig, generate_suite, write_suite
from vibethinker.pipeline import StageContext, require_exists
from vibethinker.recipe import DataStage, RecipeError
from vibethinker.utils.files import write_json_atomic


def run_data_stage(stage: DataStage, ctx: StageContext) -> dict:
    if stage.suite is not None:
        settings = stage.suite
        subdomains = tuple(settings.subdomains or SUBDOMAINS)
        unknown = set(subdomains) - set(ALL_SUBDOMAINS)
        if unknown:  # extra sub-domains (word_arithmetic) are accepted by name, never added by default
            raise RecipeError(f"stage {stage.name!r}: unknown sub-domains {sorted(unknown)}; "
                              f"known: {', '.join(ALL_SUBDOMAINS)}")
        config = SuiteConfig.uniform(
            seed=ctx.recipe.seed if settings.seed is None else settings.seed, train=settings.train_per_subdomain,
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
