"""Run a recipe stage by stage, recording finished stages in ``<out>/manifest.json``.

Each stage writes under ``<out>/<stage>/``. A re-run skips stages marked done whose settings are unchanged and
resumes the interrupted one (SFT continues from its last checkpoint); a stage whose settings changed is run again,
and so is everything after it. ``only`` runs one stage alone, its ``@`` inputs read from the run folder unless
``inputs`` overrides them with paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from vibethinker.recipe import Recipe, RecipeError, StageBase
from vibethinker.utils.files import read_json, write_json_atomic
from vibethinker.utils.progress import console

# Where a model stage's checkpoint lives inside its folder: ``@NAME`` resolves to it.
MODEL_ARTIFACTS = {"init_model": "model", "import_gguf": "model", "sft": "model", "rl": "model", "probe_fuse": "model",
                   "distill": "sft/model"}


@dataclass
class StageContext:
    """What a stage function gets: its folder, the run's seed and a resolver for ``@`` references."""

    recipe: Recipe
    run_dir: Path
    stage_dir: Path
    inputs: dict[str, str] = field(default_factory=dict)

    def resolve(self, field_name: str, value: str) -> Path:
        if field_name in self.inputs:
            return Path(self.inputs[field_name])
        return resolve_reference(self.recipe, self.run_dir, value)


def stage_artifact(recipe: Recipe, run_dir: Path, name: str) -> Path:
    stage = recipe.stage(name)
    artifact = MODEL_ARTIFACTS.get(stage.kind)
    return run_dir / name / artifact if artifact else run_dir / name


def resolve_reference(recipe: Recipe, run_dir: Path, value: str) -> Path:
    if not value.startswith("@"):
        return Path(value).expanduser()
    name, _, rest = value[1:].partition("/")
    return run_dir / name / rest if rest else stage_artifact(recipe, run_dir, name)


def _stage_runners() -> dict[str, Callable[[StageBase, StageContext], dict]]:
    from vibethinker.data.stage import run_data_stage
    from vibethinker.distill.stage import run_distill_stage
    from vibethinker.eval.stage import run_eval_stage
    from vibethinker.model.stage import run_import_gguf_stage, run_init_model_stage
    from vibethinker.probe.stage import run_probe_fuse_stage
    from vibethinker.rl.stage import run_rl_stage
    from vibethinker.sft.stage import run_sft_stage

    return {"data": run_data_stage, "init_model": run_init_model_stage, "import_gguf": run_import_gguf_stage,
            "sft": run_sft_stage,
            "probe_fuse": run_probe_fuse_stage, "rl": run_rl_stage, "distill": run_distill_stage,
            "eval": run_eval_stage}


def stage_fingerprint(stage: StageBase, recipe: Recipe) -> str:
    payload = json.dumps({"stage": stage.model_dump(mode="json"), "seed": recipe.seed}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Manifest:
    def __init__(self, run_dir: Path, recipe: Recipe):
        self.path = run_dir / "manifest.json"
        self.data = read_json(self.path) if self.path.exists() else {"recipe": recipe.name, "stages": {}}

    def done(self, name: str, fingerprint: str) -> bool:
        entry = self.data["stages"].get(name)
        return bool(entry and entry["status"] == "done" and entry["fingerprint"] == fingerprint)

    def mark(self, name: str, **entry) -> None:
        self.data["stages"][name] = {**self.data["stages"].get(name, {}), **entry}
        write_json_atomic(self.path, self.data)

    def summary(self, name: str) -> dict:
        return self.data["stages"].get(name, {}).get("summary", {})


def run_recipe(recipe: Recipe, run_dir: str | Path, only: str | None = None,
               inputs: dict[str, str] | None = None) -> Manifest:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(run_dir, recipe)
    runners = _stage_runners()
    stages = [recipe.stage(only)] if only else recipe.stages
    upstream_changed = False
    for stage in stages:
        fingerprint = stage_fingerprint(stage, recipe)
        if not only and not upstream_changed and manifest.done(stage.name, fingerprint):
            console.print(f"[dim]stage {stage.name} ({stage.kind}): done, skipped[/dim]")
            continue
        previous = manifest.data["stages"].get(stage.name, {})
        upstream_changed = True  # whatever runs now may change the inputs of the stages after it
        resuming = previous.get("status") == "running" and previous.get("fingerprint") == fingerprint
        if previous and not resuming:
            clear_stage_dir(run_dir / stage.name)  # stale outputs (and checkpoints) of other settings
        console.print(f"[bold cyan]stage {stage.name}[/bold cyan] ({stage.kind})" + (" - resuming" if resuming else ""))
        manifest.mark(stage.name, status="running", kind=stage.kind, fingerprint=fingerprint,
                      started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        ctx = StageContext(recipe, run_dir, run_dir / stage.name, dict(inputs or {}))
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        summary = runners[stage.kind](stage, ctx)
        manifest.mark(stage.name, status="done", seconds=round(time.time() - started, 1), summary=summary,
                      finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return manifest


def clear_stage_dir(path: Path) -> None:
    """Remove a stage folder: renamed aside first, so a crash never leaves a half-deleted folder in place."""
    if path.exists():
        trash = path.with_name(f".{path.name}.stale-{os.getpid()}")
        os.replace(path, trash)
        shutil.rmtree(trash)


def load_stage_problems(stage: StageBase, ctx: StageContext, field_name: str = "data") -> list:
    """The problems of a stage's data file, narrowed by its ``domains`` / ``subdomains`` / ``max_problems``."""
    from vibethinker.data.records import load_problems

    path = require_exists(ctx.resolve(field_name, getattr(stage, field_name)), field_name, stage)
    problems = load_problems(path)
    domains, subdomains = getattr(stage, "domains", None), getattr(stage, "subdomains", None)
    if domains:
        problems = [p for p in problems if p.domain in domains]
    if subdomains:
        problems = [p for p in problems if p.subdomain in subdomains]
    limit = getattr(stage, "max_problems", None)
    if limit and limit < len(problems):  # files are often sorted by source or sub-domain: sample, keep the order
        chosen = sorted(random.Random(ctx.recipe.seed).sample(range(len(problems)), limit))
        problems = [problems[i] for i in chosen]
    if not problems:
        raise RecipeError(f"stage {stage.name!r}: no problem of {path} matches domains={domains} "
                          f"subdomains={subdomains}")
    return problems


def require_exists(path: Path, what: str, stage: StageBase) -> Path:
    if not path.exists():
        raise RecipeError(f"stage {stage.name!r}: {what} {path} does not exist (run the stage that makes it first, "
                          f"or pass a path with --input)")
    return path
