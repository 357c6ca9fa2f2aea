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
from vibethinker.utils.rng import rng_state

STATE_FILE = "trainer_state.pt"


def latest_resumable(out_dir: Path) -> Path | None:
    """The newest checkpoint that still carries trainer state, or None."""
    resumable = [c for c in sorted((out_dir / "checkpoints").glob("step-*")) if (c / STATE_FILE).exists()]
    return resumable[-1] if resumable else None


def load_resume_state(checkpoint: Path, config: BaseModel, may_differ: set[str]) -> dict[str, Any]:
    """Trainer state of ``checkpoint``; refuses a checkpoint written with other settings (except ``may_differ``)."""
    state = torch.load(checkpoint / STATE_FILE, weights_only=False)
    saved = {k: v for k, v in state.get("config", {}).items() if k not in may_differ}
    current = {k: v for k, v in config.model_dump(mode="json").items() if k not in may_differ}
    if saved != current:
        changed = sorted(k for k in current if saved.get(k) != current[k])
        raise ValueError(f"{checkpoint}: checkpoint of a run with other settings ({', '.join(changed)}); "
                         f"resume with the same settings or use a fresh output folder")
    return state


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
