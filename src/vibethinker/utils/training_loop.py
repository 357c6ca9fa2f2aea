"""The skeleton every trainer shares: one :class:`TrainingRun` owns the device, the seeded start, the model and
tokenizer, the AdamW optimiser (and an optional LR schedule), the resume checkpoint, the metrics log, the step loop
with its progress bar, periodic atomic checkpoints and the final model.

A trainer (SFT, RL) supplies only what differs: its data, and a step function that turns the step index into one
optimiser update and a metrics row. Whatever is about placement and persistence - which device, how gradients are
clipped and applied, who writes checkpoints and logs - lives here once, so that multi-GPU training (FSDP2 under
torchrun: wrap the model, shard the optimiser, save and log from rank 0) is written in one place.

Order matters for exact resume and for reproducing a fresh run: the RNGs are seeded before the weights are loaded,
the stage's own setup runs between :class:`TrainingRun` and :meth:`TrainingRun.begin`, and ``begin`` restores the
checkpoint's RNG state last, just before the loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from vibethinker.model.checkpoint import default_device, load_model, load_tokenizer, save_pretrained_atomic
from vibethinker.utils.bf16_adamw import CompensatedAdamW
from vibethinker.utils.progress import progress_bar
from vibethinker.utils.rng import restore_rng_state, seed_everything
from vibethinker.utils.run_log import RunLog
from vibethinker.utils.train_state import latest_resumable, load_resume_state, save_training_checkpoint


@dataclass
class StepOutcome:
    """What a step function hands back: the row to log for the step it took, and the progress-bar text."""

    metrics: dict[str, Any]
    info: str = ""
    log_anyway: bool = False  # log this row even off the log_every grid (RL: a validation ran at this step)


StepFn = Callable[[int], StepOutcome]


class TrainingRun:
    """One training run in ``out_dir``: resumes from its newest resumable checkpoint when there is one.

    ``config`` is the stage's settings model; the fields read here are ``device``, ``seed``, ``learning_rate``,
    ``adam_betas``, ``weight_decay``, ``max_grad_norm``, ``log_every`` and ``save_every``. The checkpoint must come
    from the same settings except those declared :func:`~vibethinker.utils.fields.resumable`.

    Use: ``run = TrainingRun(...)``; the stage's setup (data, extra models); ``run.begin(total_steps)``;
    ``run.loop(name, step_fn)``; ``if run.finish(): <write the summary>``.
    """

    def __init__(self, model_path: str | os.PathLike, config: BaseModel, out_dir: str | os.PathLike,
                 dtype: torch.dtype = torch.float32):
        self.config = config
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(config.device) if config.device else default_device()
        self.resume_from = latest_resumable(self.out_dir)
        seed_everything(config.seed)
        self.tokenizer = load_tokenizer(model_path)
        # Resuming loads the checkpoint's weights; the tokenizer always comes from the starting model.
        self.model = load_model(self.resume_from or model_path, device=self.device, dtype=dtype)
        self.model.train()
        self.step = 0
        self.total_steps = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.log: RunLog | None = None
        self.last_metrics: dict[str, Any] = {}
        self.started = time.time()

    def begin(self, total_steps: int, lr_lambda: Callable[[int], float] | None = None,
              fused: bool | None = None) -> None:
        """Build AdamW (:class:`~vibethinker.utils.bf16_adamw.CompensatedAdamW` for bf16 weights when the config's
        ``fp32_optimizer_state`` asks; and a ``LambdaLR`` when ``lr_lambda`` is given), restore the checkpoint's optimiser,
        schedule, RNG and step when resuming, and open the metrics log cut back to that step.

        ``fused`` is passed to AdamW as is; None keeps torch's default, so a trainer that never asked for the
        fused kernel keeps the numerics it had."""
        config = self.config
        self.total_steps = total_steps
        low_precision = any(p.dtype != torch.float32 for p in self.model.parameters())
        if low_precision and getattr(config, "fp32_optimizer_state", False):
            self.optimizer = CompensatedAdamW(self.model.parameters(), lr=config.learning_rate,
                                              betas=config.adam_betas, weight_decay=config.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate,
                                               betas=config.adam_betas, weight_decay=config.weight_decay, fused=fused)
        if lr_lambda is not None:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda)
        if self.resume_from is not None:
            state = load_resume_state(self.resume_from, config)
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            restore_rng_state(state["rng"])
            self.step = state["step"]
        self.log = RunLog(self.out_dir, resume_step=self.step)

    def apply_gradients(self) -> float:
        """Clip the accumulated gradients to ``max_grad_norm``, take one optimiser (and schedule) step and clear
        them; returns the norm before clipping."""
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm))
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def loop(self, name: str, step_fn: StepFn, stop_after_steps: int | None = None) -> None:
        """Run ``step_fn(step)`` for every remaining step; ``step`` is the number of updates already taken, which
        is also the data position. Logs every ``log_every`` steps and at the last, checkpoints every
        ``save_every`` steps before the last (the last writes the final model instead).

        ``stop_after_steps`` ends early as an interruption would; tests use it to prove exact resume."""
        config = self.config
        self.started = time.time()
        with progress_bar() as bar:
            task = bar.add_task(name, total=self.total_steps, completed=self.step, info="")
            while self.step < self.total_steps:
                if stop_after_steps is not None and self.step >= stop_after_steps:
                    break
                outcome = step_fn(self.step)
                self.step += 1
                self.last_metrics = outcome.metrics
                if outcome.log_anyway or self.step % config.log_every == 0 or self.step == self.total_steps:
                    self.log.log(self.step, outcome.metrics)
                if config.save_every and self.step % config.save_every == 0 and self.step < self.total_steps:
                    self.save()
                bar.update(task, completed=self.step, info=outcome.info)

    def save(self) -> Path:
        """An atomic ``checkpoints/step-N`` with the optimiser (and schedule) state, RNG and step for resuming."""
        states = {"optimizer": self.optimizer.state_dict()}
        if self.scheduler is not None:
            states["scheduler"] = self.scheduler.state_dict()
        return save_training_checkpoint(self.model, self.tokenizer, self.out_dir, self.step, self.config, **states)

    def finish(self) -> bool:
        """Close the log; write the final ``model/`` and return True when every step ran, else leave a resumable
        checkpoint (no final model, so a stage never mistakes an interrupted run for a finished one)."""
        self.log.close()
        if self.step < self.total_steps:
            self.save()
            return False
        save_pretrained_atomic(self.model, self.tokenizer, self.out_dir / "model")
        return True

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
