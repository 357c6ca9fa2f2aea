"""Resumable training checkpoints shared by the SFT and RL trainers.

``<out>/checkpoints/step-NNNNNN/`` is a plain HF checkpoint; the newest one also holds ``trainer_state.pt``
(optimiser and scheduler state, RNG, step, and the run's settings). Both trainers derive their data order from
(seed, step), so the step index is the data position and resuming continues the same run exactly.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from vibethinker.model.checkpoint import save_pretrained_atomic
from vibethinker.utils.fields import resumable_fields
from vibethinker.utils.rng import rng_state

STATE_FILE = "trainer_state.pt"


def latest_resumable(out_dir: Path) -> Path | None:
    """The newest checkpoint that still carries trainer state, or None."""
    resumable = [c for c in sorted((out_dir / "checkpoints").glob("step-*")) if (c / STATE_FILE).exists()]
    return resumable[-1] if resumable else None


def load_resume_state(checkpoint: Path, config: BaseModel) -> dict[str, Any]:
    """Trainer state of ``checkpoint``; refuses a checkpoint written with other settings, naming them.

    Which settings may differ comes from the config's own field metadata (:func:`~vibethinker.utils.fields.resumable`),
    so a new setting is compared by default and a hand-kept list cannot drift from the config."""
    state = torch.load(checkpoint / STATE_FILE, weights_only=False)
    changed = changed_settings(state.get("config", {}), config)
    if changed:
        raise ValueError(f"{checkpoint}: checkpoint of a run with other settings ({', '.join(changed)}); "
                         f"resume with the same settings or use a fresh output folder")
    return state


def changed_settings(saved: dict[str, Any], config: BaseModel, prefix: str = "") -> list[str]:
    """Dotted names of the settings of ``config`` that differ from ``saved`` (its ``model_dump(mode="json")`` at
    save time), resumable fields left out; nested settings models (``sampling``) are compared field by field.

    A saved setting the config no longer has counts as changed too: the checkpoint came from other code."""
    fields = type(config).model_fields
    skip = resumable_fields(type(config))
    current = config.model_dump(mode="json")
    changed = []
    for name in fields:
        if name in skip:
            continue
        value = getattr(config, name)
        if isinstance(value, BaseModel) and isinstance(saved.get(name), dict):
            changed += changed_settings(saved[name], value, f"{prefix}{name}.")
        elif name not in saved or saved[name] != current[name]:
            changed.append(prefix + name)
    changed += [prefix + name for name in saved if name not in fields]
    return sorted(changed)


def save_training_checkpoint(model, tokenizer, out_dir: Path, step: int, config: BaseModel,
                             **states: Any) -> Path:
    """Write ``checkpoints/step-N`` atomically with ``states`` (e.g. optimizer=..., scheduler=... state dicts);
    older checkpoints keep their weights (probing scores them) but drop their trainer state."""
    payload = io.BytesIO()
    torch.save({**states, "rng": rng_state(), "step": step, "data_position": {"steps_consumed": step},
                "config": config.model_dump(mode="json")}, payload)
    path = save_pretrained_atomic(model, tokenizer, out_dir / "checkpoints" / f"step-{step:06d}",
                                  extra_files={STATE_FILE: payload.getvalue()})
    for older in (out_dir / "checkpoints").glob("step-*"):
        if older != path and (older / STATE_FILE).exists():
            (older / STATE_FILE).unlink()
    return path
