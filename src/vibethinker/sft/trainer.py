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
from pathlib import Path

import torch
import torch.nn.functional as F

from vibethinker.data.records import Problem
from vibethinker.model.checkpoint import default_device, load_model, load_tokenizer, save_pretrained_atomic
from vibethinker.sft.config import SFTConfig
from vibethinker.sft.packing import IGNORE_INDEX, PackedBatch, Step, collate_rows, epoch_steps, tokenize_problems
from vibethinker.sft.schedule import warmup_cosine_lr
from vibethinker.utils.files import write_json_atomic
from vibethinker.utils.progress import progress_bar
from vibethinker.utils.rng import restore_rng_state, seed_everything
from vibethinker.utils.run_log import RunLog
from vibethinker.utils.train_state import latest_resumable, load_resume_state, save_training_checkpoint

RESUMABLE_CHANGES = {"save_every", "log_every", "device"}  # settings that may differ when a run is resumed


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
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(input_ids=batch.input_ids.to(device), position_ids=batch.position_ids.to(device),
                       use_cache=False).logits
    labels = batch.labels.to(device)
    summed = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX,
                             reduction="sum")
    return summed / normaliser, float(summed.detach())



def train_sft(model_path: str | os.PathLike, problems: list[Problem], config: SFTConfig, out_dir: str | os.PathLike,
              stop_after_steps: int | None = None) -> dict:
    """Fine-tune ``model_path`` on the traces of ``problems``; resumes from ``out_dir`` when a checkpoint is there.

    ``stop_after_steps`` ends the process early as an interruption would (the schedule still spans the full run);
    tests use it to prove that resuming continues the same run exactly.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device) if config.device else default_device()
    resume_from = latest_resumable(out_dir)
    seed_everything(config.seed)
    tokenizer = load_tokenizer(model_path)
    model = load_model(resume_from or model_path, device=device, dtype=torch.float32)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.train()

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
    total_steps = len(plan)
    steps_per_epoch = len(epoch_fn(0))

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=config.adam_betas,
                                  weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine_lr(
        s, total_steps, config.learning_rate, config.min_learning_rate, config.warmup_ratio) / config.learning_rate)
    step = 0
    if resume_from is not None:
        state = load_resume_state(resume_from, config, RESUMABLE_CHANGES)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        restore_rng_state(state["rng"])
        step = state["step"]

    log = RunLog(out_dir, resume_step=step)
    pad_id = tokenizer.pad_token_id
    started, last_loss = time.time(), float("nan")
    with progress_bar() as bar:
        task = bar.add_task("sft", total=total_steps, completed=step, info="")
        while step < total_steps:
            if stop_after_steps is not None and step >= stop_after_steps:
                break
            t0 = time.time()
            chunk = plan[step]
            width = config.seq_len if config.packing else None
            batches = [collate_rows(samples, rows, width, pad_id) for rows in chunk]
            normaliser = max(1, sum(b.n_target_tokens for b in batches))
            loss_sum = 0.0
            for batch in batches:
                loss, summed = micro_batch_loss(model, batch, device, normaliser)
                loss.backward()
                loss_sum += summed
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            last_loss = loss_sum / normaliser
            elapsed = time.time() - t0
            if step % config.log_every == 0 or step == total_steps:
                real_tokens = sum(len(samples[i].input_ids) for rows in chunk for row in rows for i in row)
                log.log(step, {
                    "loss": last_loss, "lr": lr, "grad_norm": float(grad_norm),
                    "epoch": step / steps_per_epoch,
                    "target_tokens": normaliser,
                    "tokens_per_s": real_tokens / max(elapsed, 1e-9),
                    "padding_share": 1 - real_tokens / sum(b.input_ids.numel() for b in batches),
                })
            if config.save_every and step % config.save_every == 0 and step < total_steps:
                save_training_checkpoint(model, tokenizer, out_dir, step, config, optimizer=optimizer.state_dict(),
                                         scheduler=schedule.state_dict())
            bar.update(task, completed=step, info=f"loss {last_loss:.3f}")
    log.close()
    if step < total_steps:  # interrupted on purpose: leave a resumable checkpoint, no final model
        save_training_checkpoint(model, tokenizer, out_dir, step, config, optimizer=optimizer.state_dict(),
                                         scheduler=schedule.state_dict())
        return {"finished": False, "step": step}
    save_pretrained_atomic(model, tokenizer, out_dir / "model")
    summary = {
        "finished": True, "steps": total_steps, "samples": len(samples), "problems": len(problems),
        "dropped_too_long": len(too_long), "epochs": epochs, "final_loss": last_loss,
        "train_seconds": time.time() - started, "device": str(device),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    write_json_atomic(out_dir / "sft_summary.json", summary)
    return summary
