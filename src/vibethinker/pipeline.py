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
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from vibethinker.recipe import Recipe
from vibethinker.stages import stage_kind
from vibethinker.stages.base import RecipeError, StageBase, StageContext
from vibethinker.utils.files import read_json, write_json_atomic
from vibethinker.utils.progress import console
from vibethinker.window_check import window_problem


def stage_artifact(recipe: Recipe, run_dir: Path, name: str, folder: bool = False) -> Path:
    """Where ``@name`` points: the stage's main artefact (its kind's ``artifact``), or with ``folder`` its folder."""
    artifact = None if folder else stage_kind(recipe.stage(name).kind).artifact
    return run_dir / name / artifact if artifact else run_dir / name


def resolve_reference(recipe: Recipe, run_dir: Path, value: str, folder: bool = False) -> Path:
    if not value.startswith("@"):
        return Path(value).expanduser()
    name, _, rest = value[1:].partition("/")
    return run_dir / name / rest if rest else stage_artifact(recipe, run_dir, name, folder)


def stage_context(recipe: Recipe, run_dir: Path, name: str, inputs: dict[str, str] | None = None) -> StageContext:
    """The context of stage ``name``: its folder, the recipe seed, ``@`` references resolved in ``run_dir``
    unless ``inputs`` (``--input FIELD=PATH``) gives the field a path."""
    given = dict(inputs or {})

    def resolve(field_name: str, value: str, folder: bool) -> Path:
        if field_name in given:
            return Path(given[field_name])
        return resolve_reference(recipe, run_dir, value, folder)

    return StageContext(seed=recipe.seed, stage_dir=run_dir / name, resolver=resolve)


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
    # Checked again with the --input paths, and with checkpoints that appeared since the recipe was loaded.
    problem = window_problem(recipe.stages, inputs)
    if problem is not None:
        raise RecipeError(problem.message)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(run_dir, recipe)
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
        ctx = stage_context(recipe, run_dir, stage.name, inputs)
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        summary = stage_kind(stage.kind).run(stage, ctx)
        manifest.mark(stage.name, status="done", seconds=round(time.time() - started, 1), summary=summary,
                      finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return manifest


def clear_stage_dir(path: Path) -> None:
    """Remove a stage folder: renamed aside first, so a crash never leaves a half-deleted folder in place."""
    if path.exists():
        trash = path.with_name(f".{path.name}.stale-{os.getpid()}")
        os.replace(path, trash)
        shutil.rmtree(trash)
