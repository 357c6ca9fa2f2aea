"""Stage ``probe_fuse`` (SPEC 2.2): probe an SFT stage's checkpoints with Pass@K per sub-domain, pick the
specialist of each sub-domain, fuse them into ``model/``.

Outputs in the stage folder: ``probing.json`` / ``probing.md`` / ``probing.png`` (P_i(t) with Pass@1 beside it),
``samples/`` (the graded probe samples, a cache), ``model/`` (the fused checkpoint, with ``fusion.json``) and, with
``probe_fused``, ``fused_probe/`` (the fused model probed the same way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from vibethinker.probe.config import ProbeConfig
from vibethinker.stages.base import (RopeOverride, StageBase, StageContext, StageKind, config_of, inherits,
                                     require_exists, sampling_need)


class ProbeFuseStage(StageBase, ProbeConfig, RopeOverride):
    """Diversity-exploring distillation (SPEC 2.2): Pass@K-probe an SFT stage's checkpoints per sub-domain, pick
    the best checkpoint per sub-domain and fuse the specialists into ``model/``."""

    kind: Literal["probe_fuse"]
    sft: str = Field(description=(
        "The SFT stage whose checkpoints/ and final model/ are probed: '@sft' (its folder) or a folder."))
    data: str = Field(description="Probing problems with verified answers, one set per sub-domain (e.g. probe.jsonl).")
    weights: Literal["uniform"] = Field("uniform", description=(
        "Fusion weights over sub-domains: uniform w_i = 1/N as in the 1.5B report (SPEC 2.2 step 4)."))
    probe_fused: bool = Field(True, description=(
        "Probe the fused model too, with the same problems and sampling, and record its pass@K next to each "
        "checkpoint's (summary 'probe'): the evidence that fusion keeps the spread of solutions (SPEC 2.2)."))


def run(stage: ProbeFuseStage, ctx: StageContext) -> dict:
    from vibethinker.data.records import load_problems
    from vibethinker.model.fusion import fuse_checkpoints
    from vibethinker.model.window import stage_model
    from vibethinker.probe.probing import fusion_weights, list_checkpoints, probe_checkpoints, select_specialists

    folder = require_exists(ctx.resolve("sft", stage.sft, folder=True), "sft", stage)
    problems = load_problems(require_exists(ctx.resolve("data", stage.data), "data", stage))
    checkpoints = list_checkpoints(folder)
    if not checkpoints:
        raise ValueError(f"stage {stage.name!r}: {folder} has no checkpoints/step-*/ nor model/ to probe")
    config = config_of(stage, ProbeConfig)
    with stage_model(stage.rope_scaling, stage.sampling.max_model_len):
        result = probe_checkpoints(checkpoints, problems, config, ctx.stage_dir)
    specialists = select_specialists(result)
    weights = fusion_weights(specialists, stage.weights)
    fuse_checkpoints(list(weights), list(weights.values()), ctx.stage_dir / "model")
    if stage.rope_scaling is not None:  # the fused config is the first input's: the override is written into it
        write_rope_scaling(ctx.stage_dir / "model", stage.rope_scaling)
    summary = {
        "checkpoints_probed": len(checkpoints), "k": config.k, "n": config.n,
        "specialists": {sub: {"step": s.step, f"pass@{config.k}": s.score} for sub, s in specialists.items()},
        "fusion_weights": {Path(path).name if Path(path).name != "model" else "final": w
                           for path, w in weights.items()},
    }
    if stage.probe_fused:
        with stage_model(stage.rope_scaling, stage.sampling.max_model_len):
            fused = probe_checkpoints([(FUSED_STEP, ctx.stage_dir / "model")], problems, config,
                                      ctx.stage_dir / "fused_probe")
        summary["probe"] = fused_against_checkpoints(result, fused.checkpoints[0])
    return summary


FUSED_STEP = 10**9  # the fused model's row in its probing table (after every real step)


def fused_against_checkpoints(result, fused) -> dict:
    """Pass@K and pass@1 over all probing problems of each probed checkpoint and of the fused model, so the report
    shows whether fusion kept the spread of solutions (SPEC 2.2) that the last checkpoint alone would lose."""
    from vibethinker.eval.metrics import pass_at_k

    def overall(probe) -> dict:
        counts = list(probe.correct.values())
        return {f"pass@{result.k}": sum(pass_at_k(result.n, c, result.k) for c in counts) / len(counts),
                "pass@1": sum(counts) / (result.n * len(counts))}

    scores = {c.step: overall(c) for c in result.checkpoints}
    key, merged = f"pass@{result.k}", overall(fused)
    last, best = result.checkpoints[-1].step, max(scores, key=lambda step: scores[step][key])
    return {"checkpoints": {f"step-{step:06d}": s for step, s in scores.items()}, "fused": merged,
            "last_step": last, "best_step": best,
            f"fused_minus_last_{key}": merged[key] - scores[last][key],
            f"fused_minus_best_{key}": merged[key] - scores[best][key]}


def write_rope_scaling(path: Path, rope) -> None:
    from transformers import AutoConfig

    from vibethinker.model.window import apply_rope_scaling

    apply_rope_scaling(AutoConfig.from_pretrained(path), rope).save_pretrained(path)


def note(summary: dict) -> str:
    if "specialists" not in summary:
        return ""
    picks = ", ".join(f"{sub}: step {v['step']}" for sub, v in summary["specialists"].items())
    line = f"{summary['checkpoints_probed']} checkpoints, pass@{summary['k']} specialists {picks}"
    if "probe" in summary:
        from vibethinker.report.effects import fusion_comparison

        key, fused, last, _ = fusion_comparison(summary["probe"])
        line += f"; probe {key}: fused {fused:.3f}, last checkpoint {last:.3f}"
    return line


def markdown(run_dir: Path, name: str, entry: dict) -> list[str]:
    table = run_dir / name / "probing.md"
    if not table.exists():
        return []
    return [f"## Diversity probing: {name}", "", table.read_text().strip(), "", f"![{name} probing]({name}/probing.png)",
            ""]


def html(run_dir: Path, name: str, entry: dict) -> tuple[str, str, str] | None:
    from vibethinker.report.blocks import Markup, escape, fmt, image, section, table
    from vibethinker.utils.files import read_json

    path = run_dir / name / "probing.json"
    if not path.exists():
        return None
    probe = read_json(path)
    k, specialists = probe.get("k"), probe.get("specialists", {})
    subdomains = sorted({s for row in probe.get("table", []) for s in row.get("subdomains", {})})
    header = ["step", "checkpoint"] + [f"{s} {m}" for s in subdomains for m in (f"pass@{k}", "pass@1")]
    rows = []
    for entry in probe.get("table", []):
        cells = [entry.get("step"), Path(str(entry.get("path", ""))).name]
        for sub in subdomains:
            scores = entry.get("subdomains", {}).get(sub, {})
            best = specialists.get(sub, {}).get("step") == entry.get("step")
            value = scores.get(f"pass@{k}")
            cells.append(Markup(f"<td class='num best'>{fmt(value)} ★</td>") if best and value is not None
                         else value)
            cells.append(scores.get("pass@1"))
        rows.append(cells)
    weights = [[w.get("step"), w.get("path"), float(w.get("weight", 0.0)), ", ".join(w.get("subdomains", []))]
               for w in probe.get("weights", [])]
    body = (f"<p class=note>Per sub-domain pass@{escape(k)} from n={escape(probe.get('n'))} samples per probing problem; "
            "★ marks the specialist checkpoint of each sub-domain (SPEC 2.2).</p>" + table(header, rows))
    png = run_dir / name / "probing.png"
    body += image(png.read_bytes() if png.exists() else None, f"probing curves of {name}")
    if weights:
        body += "<h3>Fusion weights</h3>" + table(["step", "checkpoint", "weight", "specialist of"], weights)
    return section(f"probe-{name}", f"Diversity probing: {name}", body)


KIND = StageKind(ProbeFuseStage, run, writes=("probing.json", "probing.md", "probing.png", "samples/", "model/"),
                 artifact="model", note=note, markdown=markdown, html=html,
                 window_needs=lambda stage: [sampling_need(stage.sampling, model="sft")],
                 output_window=inherits("sft"))
