"""Steady-state RL step time: our on-policy trainer (``train_rl``) against TRL's ``GRPOTrainer`` on the same work.

Run (one H200, both sides in one process): ``python bench/rl_vs_trl.py`` (writes bench/results/rl_vs_trl.json);
CPU smoke test: ``OMP_NUM_THREADS=1 python bench/rl_vs_trl.py --smoke`` (TRL importable, e.g. via PYTHONPATH).
TRL is imported only for its side, so ``--sides ours`` runs without it. ``--sides ours,ours-compiled,trl`` adds our
trainer with ``torch_compile`` (the forward/backward compiled; its first steps include the compilation).

The work, identical for both sides:

* model: a random (seeded) Qwen2 of the Qwen2.5-0.5B shape (hidden 896, 24 layers, 14 heads / 2 KV heads,
  intermediate 4864) with a 16,384-entry vocabulary, saved once as an HF checkpoint that both sides load. The
  tokenizer is our BPE padded with ``<|extra_i|>`` tokens to exactly the vocabulary size, so every id decodes.
  bf16 weights on a GPU (fp32 on CPU, where bf16 matmuls are slow), sdpa attention, no gradient checkpointing.
* step: 16 prompts x 8 samples, at most 256 new tokens, temperature 1, top-p 1, no top-k; rewards from the same
  callable (the share of digit characters in the completion text); group-normalised advantages, no KL (no
  reference model), the token-level clipped loss (eps 0.2 / 0.28) averaged per sequence then over sequences; ONE
  AdamW step (lr 1e-6, betas 0.9/0.999, no weight decay, constant LR, grad-norm clip 1.0) per rollout batch.
  Both stop a completion at the same ids (the checkpoint's generation_config eos ids: <|im_end|>, <|endoftext|>).
* ours: ``generation_backend="auto"`` (the native engine on a GPU), MGPO lambda 0 (plain GRPO weights),
  ``micro_batch_size`` sequences per forward/backward (``--micro-batch-size``).
* TRL: transformers ``generate`` (TRL's default backend: no vLLM), the whole batch in one forward/backward
  (per_device_train_batch_size = 128 = generation_batch_size, so no separate old-log-prob pass), optimiser
  ``adamw_torch_fused`` (TRL's default; ours also uses the fused ``torch.optim.AdamW`` on a GPU).

Step time: ours from ``step_seconds`` in ``<run>/metrics.jsonl`` (sampling + scoring + update); TRL from a callback
at ``on_step_begin`` / ``on_step_end`` (transformers' Trainer calls ``training_step`` between them, and TRL
generates inside it, in ``_prepare_inputs``), with ``torch.cuda.synchronize()`` on CUDA. The first ``--warmup``
steps (CUDA graph capture, allocator growth, autotuning) are dropped; median and mean of the rest are reported.
A random-weight model rarely emits a stop token, so nearly every completion runs to the limit on both sides; the
mean completion length of each side is recorded to show that. Our trainer scores a completion cut at the length
limit 0 (SPEC 2.3), so most of our advantages are 0: that changes no computation (every response token still goes
through the loss and the backward pass).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import torch
from tokenizers import AddedToken

from vibethinker.data.records import Problem
from vibethinker.generate.types import Completion
from vibethinker.model import (
    TinyModelConfig,
    build_tiny_model,
    save_pretrained_atomic,
    train_tokenizer,
)
from vibethinker.prompts import user_message
from vibethinker.rl.config import RLConfig
from vibethinker.rl.rewards import GroupReward
from vibethinker.utils.files import write_json_atomic
from vibethinker.utils.run_log import read_metrics
from vibethinker.utils.runtime import configure_torch_threads, quiet_transformers

FULL = dict(shape=dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                       num_key_value_heads=2, max_position_embeddings=2048, rope_theta=1000000.0),
            vocab_size=16384, prompts=16, group_size=8, max_new_tokens=256)
SMOKE = dict(shape=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, max_position_embeddings=512, rope_theta=10000.0),
             vocab_size=1024, prompts=4, group_size=4, max_new_tokens=16)
LEARNING_RATE, MAX_GRAD_NORM, CLIP_LOW, CLIP_HIGH, SEED = 1e-6, 1.0, 0.2, 0.28, 0
DEFAULT_OUT = Path(__file__).parent / "results" / "rl_vs_trl.json"
SIDES = ("ours", "ours-compiled", "trl")


def bench_problems(count: int) -> list[Problem]:
    rng = random.Random(SEED)
    problems = []
    for i in range(count):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        problems.append(Problem(id=f"bench-{i}", domain="math", subdomain="arithmetic", difficulty=1,
                                problem=f"What is {a} + {b}?", answer=str(a + b), source="bench"))
    return problems


def build_checkpoint(path: Path, work: dict, problems: list[Problem], dtype: torch.dtype) -> Path:
    """Random Qwen2 + our BPE filled up with ``<|extra_i|>`` tokens to exactly ``vocab_size`` entries."""
    vocab_size = work["vocab_size"]
    texts = [user_message(p) for p in problems] + [f"{a} + {b} = {a + b}" for a in range(50) for b in range(50)]
    tokenizer = train_tokenizer(texts, vocab_size=min(2048, vocab_size // 2))
    # non-special, so they survive skip_special_tokens decoding on both sides and every sampled id has text
    tokenizer.add_tokens([AddedToken(f"<|extra_{i}|>", special=False, normalized=False)
                          for i in range(vocab_size - len(tokenizer))])
    if len(tokenizer) != vocab_size:
        raise RuntimeError(f"tokenizer has {len(tokenizer)} entries, expected {vocab_size}")
    model = build_tiny_model(tokenizer, TinyModelConfig(**work["shape"]), seed=SEED).to(dtype)
    return save_pretrained_atomic(model, tokenizer, path)


def digit_share(text: str) -> float:
    """The shared reward: share of digit characters; varies between completions, so advantages are not all 0."""
    return sum(ch.isdigit() for ch in text) / max(1, len(text))


def ours_reward(problem: Problem, completions: Sequence[Completion]) -> GroupReward:
    rewards = [digit_share(c.text) for c in completions]
    return GroupReward(rewards, [r >= 0.5 for r in rewards])  # correctness only feeds MGPO, off here (lambda 0)


def trl_reward(prompts, completions, **_) -> list[float]:
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]  # conversational or plain
    return [digit_share(t) for t in texts]


def steady(values: list[float], warmup: int) -> dict:
    kept = values[warmup:]
    if not kept:
        raise ValueError(f"no steps left after dropping {warmup} warm-up steps of {len(values)}")
    return {"median": statistics.median(kept), "mean": statistics.fmean(kept), "steps": len(kept)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_ours(checkpoint: Path, problems: list[Problem], work: dict, args, run_dir: Path, on_cuda: bool,
             torch_compile: bool = False) -> dict:
    from vibethinker.rl.trainer import train_rl

    n = work["prompts"] * work["group_size"]
    config = RLConfig(prompts_per_step=work["prompts"], group_size=work["group_size"],
                      max_new_tokens=work["max_new_tokens"], max_steps=args.steps, kl_coef=0.0, mgpo_lambda=0.0,
                      learning_rate=LEARNING_RATE, max_grad_norm=MAX_GRAD_NORM, clip_low=CLIP_LOW,
                      clip_high=CLIP_HIGH, loss_aggregation="seq-mean-token-mean", temperature=1.0, top_p=1.0,
                      micro_batch_size=args.micro_batch_size, generation_batch_size=max(256, n),
                      generation_backend="auto", require_think=False, dtype="bfloat16" if on_cuda else "float32",
                      save_every=0, log_every=1, seed=SEED, torch_compile=torch_compile)
    summary = train_rl(checkpoint, problems, config, run_dir, reward_fn=ours_reward)
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "step_seconds" in r]
    if not summary.get("finished") or len(rows) != args.steps:
        raise RuntimeError(f"{run_dir}/metrics.jsonl: expected {args.steps} steps with step_seconds, "
                           f"found {len(rows)} (summary {summary})")
    step = [r["step_seconds"] for r in rows]
    generated = [r["generated_tokens"] for r in rows]
    return {"config": config.model_dump(mode="json"), "step_seconds": step,
            "generation_seconds": [r["generation_seconds"] for r in rows],
            "training_seconds": [r["training_seconds"] for r in rows],
            "completion_length_mean": [r["response_length_mean"] for r in rows],
            "truncated_share": [r["truncated_share"] for r in rows], "generated_tokens": generated,
            "time": steady(step, args.warmup), "tokens_per_step": statistics.fmean(generated[args.warmup:])}


def run_trl(checkpoint: Path, problems: list[Problem], work: dict, args, run_dir: Path, on_cuda: bool) -> dict:
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    class StepTimer(TrainerCallback):
        """Wall time between on_step_begin and on_step_end: generation, scoring, loss, backward, clip, update."""

        def __init__(self):
            self.seconds, self.logs, self._start = [], [], None

        def on_step_begin(self, args, state, control, **kw):
            sync(args.device)
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            sync(args.device)
            self.seconds.append(time.perf_counter() - self._start)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                self.logs.append({"step": state.global_step, **logs})

    n = work["prompts"] * work["group_size"]
    overrides = dict(
        per_device_train_batch_size=n, gradient_accumulation_steps=1, num_generations=work["group_size"],
        max_completion_length=work["max_new_tokens"], beta=0.0, num_iterations=1, learning_rate=LEARNING_RATE,
        max_grad_norm=MAX_GRAD_NORM, epsilon=CLIP_LOW, epsilon_high=CLIP_HIGH, loss_type="grpo",
        scale_rewards="group", mask_truncated_completions=False, bf16=on_cuda, fp16=False, temperature=1.0,
        top_p=1.0, top_k=0, use_vllm=False, logging_steps=1, report_to="none", save_strategy="no",
        max_steps=args.steps, gradient_checkpointing=False, dataloader_num_workers=0, seed=SEED,
        optim="adamw_torch_fused", lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        model_init_kwargs={"dtype": "bfloat16" if on_cuda else "float32", "attn_implementation": "sdpa"})
    config = GRPOConfig(output_dir=str(run_dir), **overrides)
    if config.generation_batch_size != n or config.steps_per_generation != 1:
        raise RuntimeError(f"TRL would generate {config.generation_batch_size} completions every "
                           f"{config.steps_per_generation} steps; the benchmark needs {n} every step")
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": user_message(p)}] for p in problems]})
    timer = StepTimer()
    trainer = GRPOTrainer(model=str(checkpoint), reward_funcs=[trl_reward], args=config, train_dataset=dataset,
                          callbacks=[timer])
    try:
        trainer.train()
    finally:
        del trainer
    if len(timer.seconds) != args.steps or len(timer.logs) != args.steps:
        raise RuntimeError(f"TRL ran {len(timer.seconds)} timed steps and logged {len(timer.logs)}, "
                           f"expected {args.steps}")
    lengths = [row["completions/mean_length"] for row in timer.logs]
    generated = [length * n for length in lengths]
    return {"version": trl.__version__, "config": {k: v for k, v in overrides.items()}, "step_seconds": timer.seconds,
            "trl_step_time": [row.get("step_time") for row in timer.logs], "completion_length_mean": lengths,
            "truncated_share": [row.get("completions/clipped_ratio") for row in timer.logs],
            "generated_tokens": generated, "time": steady(timer.seconds, args.warmup),
            "tokens_per_step": statistics.fmean(generated[args.warmup:])}


def release_memory() -> dict:
    """Free what the finished side left behind; the numbers show whether the next side starts on an empty GPU."""
    gc.collect()
    if not torch.cuda.is_available():
        return {}
    torch.cuda.empty_cache()
    free, total = torch.cuda.mem_get_info()
    stats = {"peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
             "allocated_after_gib": torch.cuda.memory_allocated() / 2**30, "free_after_gib": free / 2**30,
             "total_gib": total / 2**30}
    torch.cuda.reset_peak_memory_stats()
    return stats


def environment() -> dict:
    import transformers

    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "machine": platform.machine()}
    try:
        import trl
        info["trl"] = trl.__version__
    except ImportError:
        info["trl"] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def print_table(sides: dict) -> None:
    print(f"\n{'side':<13} {'median s/step':>14} {'mean s/step':>12} {'tokens/step':>12} {'mean len':>9} "
          f"{'TRL/side':>9}")
    trl = sides.get("trl", {}).get("time")
    for name, side in sides.items():
        if "error" in side:
            print(f"{name:<13} FAILED: {side['error'].strip().splitlines()[-1]}")
            continue
        t = side["time"]
        length = statistics.fmean(side["completion_length_mean"])
        ratio = f"{trl['median'] / t['median']:.2f}" if name != "trl" and trl else ""
        print(f"{name:<13} {t['median']:>14.3f} {t['mean']:>12.3f} {side['tokens_per_step']:>12.0f} "
              f"{length:>9.1f} {ratio:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="optimiser steps per side")
    parser.add_argument("--warmup", type=int, default=3, help="first steps left out of the statistics")
    parser.add_argument("--sides", default="ours,trl",
                        help="comma-separated, run in this order: ours, ours-compiled (torch_compile), trl")
    parser.add_argument("--micro-batch-size", type=int, default=64, help="our sequences per forward/backward")
    parser.add_argument("--smoke", action="store_true", help="tiny model and batch (CPU, under a minute)")
    parser.add_argument("--decode-tile", default=None, help=(
        "BLOCK_N,WARPS,STAGES of the engine's one-kernel decode attention (bench/decode_attention_tiles.py prints "
        "the fastest); default: the engine's DECODE_TILE"))
    parser.add_argument("--work-dir", type=Path, default=None, help="checkpoint + run folders (default: temp)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"result JSON (default {DEFAULT_OUT}; with --smoke, a file in the work folder)")
    args = parser.parse_args()
    sides_to_run = args.sides.split(",")
    if not sides_to_run or any(side not in SIDES for side in sides_to_run):
        parser.error(f"--sides: choose among {', '.join(SIDES)}, got {args.sides!r}")
    if args.steps <= args.warmup or args.warmup < 0:
        parser.error(f"--steps ({args.steps}) must exceed --warmup ({args.warmup}) >= 0")
    configure_torch_threads()
    quiet_transformers()
    if args.decode_tile:
        from decode_attention_tiles import parse_tile

        from vibethinker.generate.native.layers import paged_decode_triton

        paged_decode_triton.DECODE_TILE = parse_tile(args.decode_tile)

    work = SMOKE if args.smoke else FULL
    on_cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if on_cuda else torch.float32
    temporary = args.work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="rl_vs_trl-")) if temporary else args.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    out = (args.out or (work_dir / "rl_vs_trl_smoke.json" if args.smoke else DEFAULT_OUT)).resolve()
    problems = bench_problems(work["prompts"])
    sides: dict[str, dict] = {}
    try:
        checkpoint = build_checkpoint(work_dir / ("checkpoint-smoke" if args.smoke else "checkpoint"), work,
                                      problems, dtype)
        release_memory()
        runners = {"ours": run_ours, "ours-compiled": partial(run_ours, torch_compile=True), "trl": run_trl}
        for name in sides_to_run:
            run_dir = Path(tempfile.mkdtemp(dir=work_dir, prefix=f"{name}-"))  # fresh: train_rl resumes otherwise
            print(f"== {name}: {args.steps} steps in {run_dir}", flush=True)
            try:
                sides[name] = runners[name](checkpoint, problems, work, args, run_dir, on_cuda)
            except Exception:  # recorded and reported, and the exit status says it failed
                sides[name] = {"error": traceback.format_exc()}
                print(f"== {name} FAILED\n{sides[name]['error']}", file=sys.stderr, flush=True)
            sides[name]["gpu_memory"] = release_memory()
            if sides[name]["gpu_memory"]:
                print(f"== {name} GPU memory: {json.dumps(sides[name]['gpu_memory'])}", flush=True)
        write_result(out, sides, work, args, dtype, on_cuda)
    finally:
        if temporary:  # the checkpoint and run folders; a result written into the folder stays
            for child in work_dir.iterdir():
                if child.resolve() != out:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            if not any(work_dir.iterdir()):
                work_dir.rmdir()
    print_table(sides)
    if any("error" in side for side in sides.values()):
        raise SystemExit(1)


def write_result(out: Path, sides: dict, work: dict, args, dtype: torch.dtype, on_cuda: bool) -> None:
    def ratio(name: str) -> float | None:
        if all(side in sides and "error" not in sides[side] for side in (name, "trl")):
            return sides["trl"]["time"]["median"] / sides[name]["time"]["median"]
        return None

    result = {**environment(), "command": " ".join(sys.argv), "smoke": args.smoke,
              "workload": {**work, "steps": args.steps, "warmup": args.warmup,
                           "micro_batch_size": args.micro_batch_size, "decode_tile": args.decode_tile,
                           "dtype": str(dtype).removeprefix("torch."),
                           "device": "cuda" if on_cuda else "cpu", "reward": "share of digit characters"},
              "sides": sides, "ratio_trl_over_ours_median": ratio("ours"),
              "ratio_trl_over_ours_compiled_median": ratio("ours-compiled")}
    write_json_atomic(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
