"""The SFT loop: packed micro-batches, token-mean loss over the global batch, atomic checkpoints, exact resume.

Artefacts under ``out_dir``:
- ``model/``                    the final HF checkpoint (model + tokenizer)
- ``checkpoints/step-NNNNNN/``  HF checkpoints every ``save_every`` steps; the newest also holds
                                ``trainer_state.pt`` (optimiser, scheduler, RNG, step) for resuming
- ``metrics.jsonl``, ``tensorboard/``  loss, lr, grad norm, tokens/s per logged step
- ``sft_summary.json``          sample counts, steps, final loss, wall time
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch

from vibethinker.data.records import Problem
from vibethinker.model.attention_backend import compile_decoder_layers, use_attention_backend
from vibethinker.model.checkpointing import enable_gradient_checkpointing
from vibethinker.model.fused_kernels import apply_fused_kernels
from vibethinker.model.output_layer import masked_token_logprobs
from vibethinker.sft.config import SFTConfig
from vibethinker.sft.packing import (
    IGNORE_INDEX,
    PackedBatch,
    Step,
    TokenizedSample,
    collate_rows,
    epoch_steps,
    tokenize_problems,
)
from vibethinker.sft.schedule import warmup_cosine_lr
from vibethinker.utils.files import write_json_atomic
from vibethinker.utils.training_loop import StepOutcome, TrainingRun


def plan_steps(epoch_fn, n_epochs: float) -> list[Step]:
    """The whole run's optimiser steps, epoch by epoch; a fractional last epoch is cut short."""
    plan = []
    for epoch in range(math.ceil(n_epochs)):
        steps = epoch_fn(epoch)
        if epoch + 1 > n_epochs:
            steps = steps[: max(1, round(len(steps) * (n_epochs - epoch)))]
        plan.extend(steps)
    return plan


def micro_batch_loss(model: torch.nn.Module, batch: PackedBatch, device: torch.device, normaliser: int) -> tuple[
        torch.Tensor, float]:
    """Summed token NLL of the batch divided by the GLOBAL batch's target-token count (SPEC 5: token-mean over the
    global batch, so accumulated micro-batches add up to the one-big-batch loss and gradient)."""
    labels = batch.labels.to(device)
    mask = labels != IGNORE_INDEX
    # The output layer runs in chunks over the target positions only (model/output_layer.py): no [T, V] logits.
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logprobs, _ = masked_token_logprobs(model, batch.input_ids.to(device), labels.clamp_min(0), mask,
                                            batch.position_ids.to(device))
    summed = -logprobs.sum()
    return summed / normaliser, float(summed.detach())


@dataclass
class SFTData:
    """The run's samples and its optimiser steps over them, each step a list of micro-batches of row indices."""

    samples: list[TokenizedSample]
    dropped_too_long: int
    plan: list[Step]
    epochs: float  # as many as the plan spans: more than configured when max_steps asks for more
    steps_per_epoch: int


def prepare_data(tokenizer, problems: list[Problem], config: SFTConfig) -> SFTData:
    """Tokenise the traces, drop those longer than ``seq_len`` (a cut trace would teach stopping mid-thought) and
    plan every step; the plan is a pure function of (seed, epoch), which is what makes resuming exact."""
    samples = tokenize_problems(tokenizer, problems, config.traces_per_problem)
    too_long = [s for s in samples if len(s.input_ids) > config.seq_len]
    samples = [s for s in samples if len(s.input_ids) <= config.seq_len]
    if not samples:
        raise ValueError(f"no SFT samples: {len(problems)} problems gave {len(too_long)} traces, all longer than "
                         f"seq_len={config.seq_len} (or the problems carry no 'traces')")

    def epoch_fn(epoch: int) -> list[Step]:
        return epoch_steps(samples, config.seq_len, config.packing, config.rows_per_micro_batch,
                           config.grad_accum_steps, config.seed, epoch)

    epochs = config.epochs
    plan = plan_steps(epoch_fn, epochs)
    if config.max_steps is not None:
        while len(plan) < config.max_steps:  # more epochs until max_steps is covered
            epochs += 1
            plan = plan_steps(epoch_fn, epochs)
        plan = plan[:config.max_steps]
    return SFTData(samples, len(too_long), plan, epochs, len(epoch_fn(0)))


def sft_step(run: TrainingRun, data: SFTData, config: SFTConfig, step: int) -> StepOutcome:
    """One optimiser step over the micro-batches of ``data.plan[step]``, accumulated to the global-batch loss."""
    t0 = time.time()
    chunk = data.plan[step]
    width = config.seq_len if config.packing else None
    batches = [collate_rows(data.samples, rows, width, run.tokenizer.pad_token_id) for rows in chunk]
    normaliser = max(1, sum(b.n_target_tokens for b in batches))
    loss_sum = 0.0
    for batch in batches:
        loss, summed = micro_batch_loss(run.model, batch, run.device, normaliser)
        loss.backward()
        loss_sum += summed
    lr = run.optimizer.param_groups[0]["lr"]  # the rate this step used, before the schedule moves on
    grad_norm = run.apply_gradients()
    elapsed = time.time() - t0
    loss = loss_sum / normaliser
    real_tokens = sum(len(data.samples[i].input_ids) for rows in chunk for row in rows for i in row)
    return StepOutcome({
        "loss": loss, "lr": lr, "grad_norm": grad_norm, "epoch": (step + 1) / data.steps_per_epoch,
        "target_tokens": normaliser, "tokens_per_s": real_tokens / max(elapsed, 1e-9),
        "padding_share": 1 - real_tokens / sum(b.input_ids.numel() for b in batches),
    }, info=f"loss {loss:.3f}")


def sft_summary(run: TrainingRun, data: SFTData, problems: list[Problem]) -> dict:
    return {
        "finished": True, "steps": run.total_steps, "samples": len(data.samples), "problems": len(problems),
        "dropped_too_long": data.dropped_too_long, "epochs": data.epochs,
        "final_loss": run.last_metrics.get("loss", float("nan")), "train_seconds": time.time() - run.started,
        "device": str(run.device), "parameters": run.parameters,
    }


def train_sft(model_path: str | os.PathLike, problems: list[Problem], config: SFTConfig, out_dir: str | os.PathLike,
              stop_after_steps: int | None = None) -> dict:
    """Fine-tune ``model_path`` on the traces of ``problems``; resumes from ``out_dir`` when a checkpoint is there.

    ``stop_after_steps`` ends the process early as an interruption would (the schedule still spans the full run);
    tests use it to prove that resuming continues the same run exactly.
    """
    run = TrainingRun(model_path, config, out_dir)
    if config.gradient_checkpointing or config.checkpointed_layers is not None:
        enable_gradient_checkpointing(run.model, config.checkpointed_layers)
    use_attention_backend(run.model, config.attention, config.packing)
    apply_fused_kernels(run.model, config.fused_kernels)
    if config.torch_compile:
        compile_decoder_layers(run.model)
    data = prepare_data(run.tokenizer, problems, config)
    total = len(data.plan)
    run.begin(total, lr_lambda=lambda s: warmup_cosine_lr(
        s, total, config.learning_rate, config.min_learning_rate, config.warmup_ratio) / config.learning_rate)
    run.loop("sft", lambda step: sft_step(run, data, config, step), stop_after_steps)
    if not run.finish():  # interrupted on purpose: a resumable checkpoint, no final model
        return {"finished": False, "step": run.step}
    summary = sft_summary(run, data, problems)
    write_json_atomic(run.out_dir / "sft_summary.json", summary)
    return summary
