"""The strictly on-policy MGPO loop (SPEC 2.3): roll out with the current policy, one optimiser step per batch.

Each step: take ``prompts_per_step`` problems (a seeded shuffle per epoch), sample ``group_size`` responses each
with the trainer's own model object (no disk round trip), score and compute MGPO advantages, recompute the response
log-probs with a forward pass, and take ONE optimiser step on the clipped policy loss. The old policy is the policy
that produced the rollouts, i.e. the current weights before the update (detached), so the ratio is exactly 1 at
the one update. Gradients are accumulated over micro-batches normalised with the global counts (SPEC 5).

Artefacts under ``out_dir``:
- ``model/``                    the final HF checkpoint (model + tokenizer)
- ``checkpoints/step-NNNNNN/``  HF checkpoints every ``save_every`` steps; the newest also holds
                                ``trainer_state.pt`` (optimiser, RNG, step, config) for resuming
- ``metrics.jsonl``, ``tensorboard/``  rewards, MGPO weights, entropy, lengths, KL, clipping, the rollout/trainer
                                log-prob gap and throughput per logged step
- ``rl_summary.json``           steps, problems, first/last reward, wall time
- ``curves.png``                the logged curves of the phase, one panel per metric
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vibethinker.data.records import Problem
from vibethinker.generate import make_generator
from vibethinker.generate.types import Generator
from vibethinker.model.checkpoint import load_model
from vibethinker.model.checkpointing import enable_gradient_checkpointing
from vibethinker.model.fused_kernels import apply_fused_kernels
from vibethinker.model.output_layer import masked_token_logprobs
from vibethinker.report.plots import plot_metric_grid
from vibethinker.rl.config import RLConfig
from vibethinker.rl.dynamic_sampling import replace_zero_variance, replacement_indices
from vibethinker.rl.loss import policy_loss
from vibethinker.rl.micro_batches import micro_batch_rows
from vibethinker.rl.rewards import RewardFunction
from vibethinker.rl.rollout import build_batch, rollout
from vibethinker.rl.types import RolloutGroup, TrainingBatch
from vibethinker.rl.validation import read_validation, validate, validation_config
from vibethinker.utils.files import write_json_atomic
from vibethinker.utils.run_log import read_metrics
from vibethinker.utils.runtime import long_lived_objects_frozen
from vibethinker.utils.training_loop import StepOutcome, TrainingRun

# The panels of ``curves.png``, written at the end of each phase.
CURVE_KEYS = ("heldout/pass@1", "reward_mean", "accuracy", "mgpo_weight_mean", "advantage_std", "entropy",
              "response_length_mean", "truncated_share", "kl", "clip_fraction", "logprob_gap", "grad_norm",
              "generation_tokens_per_s")


def step_problems(n_problems: int, prompts_per_step: int, seed: int, step: int) -> list[int]:
    """Indices of the problems of optimiser step ``step``: a stream of seeded per-epoch shuffles, cut into steps.

    A pure function of the step, so a resumed run picks up exactly where it stopped.
    """
    if n_problems < 1:
        raise ValueError("RL needs at least one problem")
    start = step * prompts_per_step
    indices = []
    for position in range(start, start + prompts_per_step):
        epoch, offset = divmod(position, n_problems)
        order = list(range(n_problems))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        indices.append(order[offset])
    return indices


def rollout_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 12_345) % (2**31)


@dataclass
class UpdateStats:
    loss: float
    policy_loss: float
    kl: float
    clip_fraction: float
    ratio_mean: float
    entropy: float
    logprob_gap: float  # mean |generator log-prob - trainer log-prob| over response tokens
    tokens: int  # prompt + response tokens through the trainer


def token_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, temperature: float,
                   mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs [B, T-1] of the next tokens at the rollout temperature, entropy [B, T-1] of that distribution,
    without gradient) of right-padded rows (:func:`~vibethinker.rl.rollout.build_batch`); with ``mask [B, T-1]``
    only the masked positions are computed (the others are 0).

    No padding mask: causal attention already keeps every real token from seeing the pads that follow it, so its
    log-prob is the masked forward's (equal on the H200 benchmark) and the pads' outputs are never read; the mask
    only selected a slower attention kernel (bench/RESULTS.md). The output layer runs in chunks over the selected
    positions (model/output_layer.py), so no [B, T, vocab] fp32 tensor is ever built."""
    targets = F.pad(input_ids[:, 1:], (0, 1))
    keep = torch.ones_like(input_ids, dtype=torch.bool)
    keep[:, -1] = False
    if mask is not None:
        keep[:, :-1] &= mask.bool()
    with torch.autocast(device_type=input_ids.device.type, dtype=torch.bfloat16,
                        enabled=input_ids.device.type == "cuda"):
        logprobs, entropy = masked_token_logprobs(model, input_ids, targets, keep, temperature=temperature,
                                                  entropy=True)
    keep = keep[:, :-1]
    zeros = torch.zeros(keep.shape, dtype=torch.float32, device=input_ids.device)
    return zeros.masked_scatter(keep, logprobs), zeros.masked_scatter(keep, entropy)


def accumulate_gradients(model: torch.nn.Module, batch: TrainingBatch, config: RLConfig, device: torch.device,
                         ref_model: torch.nn.Module | None = None, logprobs_fn=token_logprobs) -> UpdateStats:
    """Forward/backward over micro-batches (``config.micro_batch_size`` sequences, or ``micro_batch_tokens``
    padded tokens: :mod:`vibethinker.rl.micro_batches`); gradients add up to the
    one-big-batch gradient because every micro-batch divides by the global token and sequence counts.
    ``logprobs_fn`` is :func:`token_logprobs` or its compiled form."""
    global_tokens = float(max(1, batch.n_response_tokens))
    global_sequences = float(max(1, batch.n_sequences))
    totals = dict(loss=0.0, policy_loss=0.0, kl=0.0, clip=0.0, ratio=0.0, entropy=0.0, gap=0.0)
    tokens = 0
    for indices in micro_batch_rows(batch.lengths, config.micro_batch_size, config.micro_batch_tokens):
        micro = batch.select(indices)
        mask = micro.response_mask.to(device)
        input_ids = micro.input_ids.to(device)
        logprobs, entropy = logprobs_fn(model, input_ids, config.temperature, mask)
        ref_logprobs = None
        if ref_model is not None:
            with torch.no_grad():
                ref_logprobs = token_logprobs(ref_model, input_ids, config.temperature, mask)[0]
        out = policy_loss(logprobs, logprobs.detach(), micro.advantages.to(device), mask, clip_low=config.clip_low,
                          clip_high=config.clip_high, aggregation=config.loss_aggregation,
                          global_tokens=global_tokens, global_sequences=global_sequences,
                          max_response_tokens=config.max_new_tokens, ref_logprobs=ref_logprobs,
                          kl_coef=config.kl_coef, kl_estimator=config.kl_estimator)
        out.loss.backward()
        n_tok = float(mask.sum())
        with torch.no_grad():
            totals["entropy"] += float((entropy * mask).sum())
            gap = (micro.generator_logprobs.to(device) - logprobs.detach()).abs()
            totals["gap"] += float((gap * mask).sum())
        totals["loss"] += float(out.loss.detach())
        totals["policy_loss"] += out.policy_loss
        totals["kl"] += out.kl * n_tok
        totals["clip"] += out.clip_fraction * n_tok
        totals["ratio"] += out.ratio_mean * n_tok
        tokens += sum(micro.lengths)
        del logprobs, entropy, out
    n = global_tokens
    return UpdateStats(totals["loss"], totals["policy_loss"], totals["kl"] / n, totals["clip"] / n,
                       totals["ratio"] / n if batch.n_sequences else 1.0, totals["entropy"] / n, totals["gap"] / n,
                       tokens)


def rollout_metrics(groups: list[RolloutGroup]) -> dict[str, float]:
    """Statistics of the groups that enter the loss."""
    rewards = [r for g in groups for r in g.rewards]
    advantages = [a for g in groups for a in g.advantages]
    lengths = [c.num_tokens for g in groups for c in g.completions]
    weights = [g.weight for g in groups]
    adv_mean = sum(advantages) / len(advantages)
    return {
        "reward_mean": sum(rewards) / len(rewards),
        "accuracy": sum(c for g in groups for c in g.correct) / len(rewards),
        "mgpo_weight_mean": sum(weights) / len(weights), "mgpo_weight_min": min(weights),
        "mgpo_weight_max": max(weights),
        "advantage_mean": adv_mean,
        "advantage_std": math.sqrt(sum((a - adv_mean) ** 2 for a in advantages) / len(advantages)),
        "response_length_mean": sum(lengths) / len(lengths), "response_length_max": max(lengths),
        "truncated_share": sum(t for g in groups for t in g.truncated) / len(rewards),
        "solved_none_share": sum(g.accuracy == 0 for g in groups) / len(groups),
        "solved_all_share": sum(g.accuracy == 1 for g in groups) / len(groups),
    }



def sample_step(generator, problems: list[Problem], config: RLConfig, step: int,
                reward_fn: RewardFunction | None) -> tuple[list[RolloutGroup], dict[str, float]]:
    """The rollout batch of optimiser step ``step`` (with dynamic sampling when configured) and its metrics.

    ``reward_mean`` / ``accuracy`` describe the step's scheduled prompts before any replacement: the policy's
    score on the prompt stream, comparable with and without dynamic sampling. The other statistics describe the
    groups that enter the loss.
    """
    scheduled = [problems[i] for i in step_problems(len(problems), config.prompts_per_step, config.seed, step)]
    seed = rollout_seed(config.seed, step)
    generated = [0]

    def sample(batch: list[Problem], round_index: int) -> list[RolloutGroup]:
        groups = rollout(generator, batch, config, seed + 104_729 * round_index, reward_fn)
        generated[0] += sum(c.num_tokens for g in groups for c in g.completions)
        return groups

    groups = sample(scheduled, 0)
    stream = rollout_metrics(groups)
    extra: dict[str, float] = {}
    if config.dynamic_sampling:
        groups, stats = replace_zero_variance(
            groups,
            draw=lambda rnd, count: [problems[i] for i in replacement_indices(len(problems), count, config.seed,
                                                                             step, rnd)],
            sample=lambda batch, rnd: sample(batch, rnd + 1),
            max_rounds=config.dynamic_sampling_max_rounds)
        extra = {"dynamic_sampling_rounds": stats.rounds, "zero_variance_initial": stats.zero_variance_initial,
                 "zero_variance_final": stats.zero_variance_final, "dynamic_sampling_extra_groups": stats.extra_groups}
    trained = rollout_metrics(groups) if config.dynamic_sampling else stream
    return groups, {**trained, "reward_mean": stream["reward_mean"], "accuracy": stream["accuracy"],
                    "trained_reward_mean": trained["reward_mean"], "generated_tokens": generated[0], **extra}


class HeldoutSchedule:
    """Validation of the live policy on the held-out problems: at step 0, every ``eval_every`` steps and at the
    last, each step once; a resumed phase skips the steps ``validation.jsonl`` already holds."""

    def __init__(self, run: TrainingRun, generator: Generator, eval_problems: list[Problem] | None,
                 config: RLConfig):
        self.run, self.generator, self.problems, self.config = run, generator, eval_problems, config
        self.enabled = bool(eval_problems) and config.eval_every > 0
        self.eval_config = validation_config(config.eval_samples, config.max_new_tokens, config.require_think,
                                             config.generation_batch_size) if self.enabled else None
        self.done = {row["step"] for row in read_validation(run.out_dir / "validation.jsonl")}

    def __call__(self, at_step: int) -> dict[str, float]:
        """The ``heldout/*`` metrics of ``at_step``, or {} when no validation is due."""
        if not self.enabled or at_step in self.done:
            return {}
        if at_step % self.config.eval_every and at_step != self.run.total_steps:
            return {}
        self.done.add(at_step)
        self.run.model.eval()
        return validate(self.generator, self.problems, self.eval_config, self.run.out_dir, at_step)


@dataclass
class RLPhase:
    """What an MGPO step needs besides the :class:`TrainingRun`."""

    run: TrainingRun
    problems: list[Problem]
    config: RLConfig
    generator: Generator
    reward_fn: RewardFunction | None
    ref_model: torch.nn.Module | None  # the frozen start of the phase, for the KL term
    logprobs_fn: Callable  # token_logprobs or its compiled form
    heldout: HeldoutSchedule


def rl_step(phase: RLPhase, step: int, freeze_warm_objects: Callable[[], None]) -> StepOutcome:
    """Roll out, score, and take ONE optimiser step on the batch of optimiser step ``step`` (strictly on-policy);
    then validate when due."""
    run, config = phase.run, phase.config
    t0 = time.time()
    groups, metrics = sample_step(phase.generator, phase.problems, config, step, phase.reward_fn)
    gen_seconds = time.time() - t0
    batch = build_batch(groups, run.tokenizer.pad_token_id, config.mask_truncated)
    release = getattr(phase.generator, "release_memory", None)
    if config.release_kv_cache and release is not None:
        release()  # the optimiser step gets the cache's memory; the next generate allocates it again
    t1 = time.time()
    run.model.train()
    if batch.n_sequences:
        stats = accumulate_gradients(run.model, batch, config, run.device, phase.ref_model, phase.logprobs_fn)
        grad_norm = run.apply_gradients()
    else:  # every response was masked out: nothing to learn from this batch
        stats, grad_norm = UpdateStats(0.0, 0.0, 0.0, 0.0, 1.0, float("nan"), float("nan"), 0), 0.0
        run.optimizer.zero_grad(set_to_none=True)
    train_seconds = time.time() - t1
    step_seconds = time.time() - t0
    validation = phase.heldout(step + 1)
    freeze_warm_objects()  # the first steps: engine graphs captured, the policy compiled (twice)
    row = {**validation, **metrics, **update_metrics(stats, grad_norm, batch, config),
           "generation_tokens_per_s": metrics["generated_tokens"] / max(gen_seconds, 1e-9),
           "training_tokens_per_s": stats.tokens / max(train_seconds, 1e-9),
           "step_seconds": step_seconds, "generation_seconds": gen_seconds, "training_seconds": train_seconds,
           **{f"reward_fn/{k}": v for k, v in getattr(phase.reward_fn, "stats", {}).items()}}
    return StepOutcome(row, log_anyway=bool(validation), info=(
        f"reward {metrics['reward_mean']:.3f} | w {metrics['mgpo_weight_mean']:.2f} | entropy {stats.entropy:.3f} | "
        f"len {metrics['response_length_mean']:.0f} | cut {metrics['truncated_share']:.2f}"))


def update_metrics(stats: UpdateStats, grad_norm: float, batch: TrainingBatch, config: RLConfig) -> dict[str, float]:
    """The logged statistics of the update itself (in the order metrics.jsonl has always listed them)."""
    return {"entropy": stats.entropy, "kl": stats.kl, "clip_fraction": stats.clip_fraction,
            "ratio_mean": stats.ratio_mean, "logprob_gap": stats.logprob_gap, "loss": stats.loss,
            "policy_loss": stats.policy_loss, "grad_norm": grad_norm, "lr": config.learning_rate,
            "loss_sequences": batch.n_sequences, "loss_tokens": batch.n_response_tokens}


def rl_summary(run: TrainingRun, problems: list[Problem], config: RLConfig) -> dict:
    """Steps, sizes, and the reward of the first and last quarter of the logged steps (single steps are noisy);
    with validation also the held-out accuracy at the first and the last validation, the phase's before/after."""
    logged = [r["reward_mean"] for r in read_metrics(run.out_dir / "metrics.jsonl") if "reward_mean" in r]
    quarter = max(1, len(logged) // 4)
    summary = {
        "finished": True, "steps": run.total_steps, "problems": len(problems),
        "rollouts_per_step": config.prompts_per_step * config.group_size,
        "first_reward_mean": sum(logged[:quarter]) / quarter if logged else float("nan"),
        "last_reward_mean": (sum(logged[-quarter:]) / quarter if logged
                             else run.last_metrics.get("reward_mean", float("nan"))),
        "reward_window_steps": quarter,
        "train_seconds": time.time() - run.started, "device": str(run.device),
    }
    rows = read_validation(run.out_dir / "validation.jsonl")
    if rows:
        summary["heldout_first"], summary["heldout_last"] = rows[0], rows[-1]
    return summary


def train_rl(model_path: str | os.PathLike, problems: list[Problem], config: RLConfig, out_dir: str | os.PathLike,
             stop_after_steps: int | None = None, reward_fn: RewardFunction | None = None,
             eval_problems: list[Problem] | None = None) -> dict:
    """Run one MGPO phase from ``model_path`` on ``problems``; resumes from ``out_dir`` when a checkpoint is there.

    With ``eval_problems`` and ``config.eval_every`` the live policy is validated on them every ``eval_every``
    steps, at the start and at the end (:mod:`vibethinker.rl.validation`).

    ``reward_fn`` scores each group (default: the domain verifiers, :func:`verifier_reward`).
    ``stop_after_steps`` ends the process early as an interruption would; resuming continues the same run exactly.
    """
    if not problems:
        raise ValueError("RL needs at least one problem")
    dtype = torch.float32 if config.dtype == "float32" else torch.bfloat16
    run = TrainingRun(model_path, config, out_dir, dtype=dtype)
    ref_model = None
    if config.kl_coef > 0:  # the frozen starting checkpoint of the phase
        ref_model = load_model(model_path, device=run.device, dtype=dtype).eval().requires_grad_(False)
    if config.gradient_checkpointing or config.checkpointed_layers is not None:
        enable_gradient_checkpointing(run.model, config.checkpointed_layers)
    apply_fused_kernels(run.model, config.fused_kernels)
    if ref_model is not None:
        apply_fused_kernels(ref_model, config.fused_kernels)
    generator = make_generator((run.model, run.tokenizer), backend=config.generation_backend,
                               batch_size=config.generation_batch_size)
    # Compiled, the function still trains the model's own parameters: the optimiser, generator and saving see them.
    logprobs_fn = torch.compile(token_logprobs) if config.torch_compile else token_logprobs
    run.begin(config.max_steps or math.ceil(len(problems) / config.prompts_per_step),
              fused=run.device.type == "cuda")
    phase = RLPhase(run, problems, config, generator, reward_fn, ref_model, logprobs_fn,
                    HeldoutSchedule(run, generator, eval_problems, config))
    if run.step == 0 and (start_metrics := phase.heldout(0)):
        run.log.log(0, start_metrics)
    with long_lived_objects_frozen() as freeze:
        run.loop("rl", lambda step: rl_step(phase, step, freeze), stop_after_steps)
    if not run.finish():  # interrupted on purpose: a resumable checkpoint, no final model
        return {"finished": False, "step": run.step}
    summary = rl_summary(run, problems, config)
    write_json_atomic(run.out_dir / "rl_summary.json", summary)
    plot_metric_grid(run.out_dir / "metrics.jsonl", run.out_dir / "curves.png", CURVE_KEYS, title=run.out_dir.name)
    return summary
