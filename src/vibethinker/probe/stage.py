"""Stage ``probe_fuse`` (SPEC 2.2): probe an SFT stage's checkpoints with Pass@K per sub-domain, pick the
specialist of each sub-domain, fuse them into ``model/``.

Outputs in the stage folder: ``probing.json`` / ``probing.md`` / ``probing.png`` (P_i(t) with Pass@1 beside it),
``samples/`` (the graded probe samples, a cache), and ``model/`` (the fused checkpoint, with ``fusion.json``).
"""

from __future__ import annotations

from pathlib import Path

from vibethinker.data.records import load_problems
from vibethinker.model.fusion import fuse_checkpoints
from vibethinker.pipeline import StageContext, require_exists
from vibethinker.probe.config import ProbeConfig
from vibethinker.probe.probing import fusion_weights, list_checkpoints, probe_checkpoints, select_specialists
from vibethinker.recipe import ProbeFuseStage


def sft_folder(path: Path) -> Path:
    """``@sft`` resolves to the stage's ``model/``; probing needs the stage folder that holds ``checkpoints/``."""
    return path.parent if path.name == "model" and not (path / "checkpoints").exists() else path


def run_probe_fuse_stage(stage: ProbeFuseStage, ctx: StageContext) -> dict:
    folder = sft_folder(require_exists(ctx.resolve("sft", stage.sft), "sft", stage))
    problems = load_problems(require_exists(ctx.resolve("data", stage.data), "data", stage))
    checkpoints = list_checkpoints(folder)
    if not checkpoints:
        raise ValueError(f"stage {stage.name!r}: {folder} has no checkpoints/step-*/ nor model/ to probe")
    config = ProbeConfig(**{name: getattr(stage, name) for name in ProbeConfig.model_fields})
    result = probe_checkpoints(checkpoints, problems, config, ctx.stage_dir)
    specialists = select_specialists(result)
    weights = fusion_weights(specialists, stage.weights)
    fuse_checkpoints(list(weights), list(weights.values()), ctx.stage_dir / "model")
    return {
        "checkpoints_probed": len(checkpoints), "k": config.k, "n": config.n,
        "specialists": {sub: {"step": s.step, f"pass@{config.k}": s.score} for sub, s in specialists.items()},
        "fusion_weights": {Path(path).name if Path(path).name != "model" else "final": w
                           for path, w in weights.items()},
    }
