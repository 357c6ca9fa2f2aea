"""Where one RL step of the rl_vs_trl workload spends its time: a diagnostic for the next optimisation.

Runs our pieces of one step by hand, each timed with a device synchronisation around it: the weight copy into the
engine, the engine's prefill and decode, the rest of the rollout (tokenising, decoding text, scoring), building
the batch, the forward/backward, the grad-norm clip and the optimiser step. Then, under the profiler:

* one generate call: the GPU-busy share of the decode, and the idle time between consecutive kernels split into
  short gaps (under 4 us: the device scheduling the next kernel of a captured graph) and long ones (the device
  waiting for the host);
* one update: the top kernels by GPU time, and GPU busy against wall time;
* the update with the model's forward and log-probs under ``torch.compile``, static and dynamic shapes, on two batch widths (compile
  times reported apart); the decode at windows of 8, 16 and 32 steps.

``python bench/profile_rl_step.py`` on the GPU machine (no result file); ``--smoke`` for a seconds-long CPU check.
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_vs_trl import FULL, SMOKE, bench_problems, build_checkpoint, ours_reward  # noqa: E402

from vibethinker.generate import make_generator  # noqa: E402
from vibethinker.model import load_model, load_tokenizer  # noqa: E402
from vibethinker.rl.config import RLConfig  # noqa: E402
from vibethinker.rl.rollout import build_batch, rollout  # noqa: E402
from vibethinker.rl.trainer import accumulate_gradients, token_logprobs  # noqa: E402

SHORT_GAP_US = 4.0


def kernel_gaps(prof) -> tuple[float, float, float, float, int]:
    """(span, busy, short-gap, long-gap) in ms over the device kernels of a profile, and the kernel count."""
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == torch.autograd.DeviceType.CUDA and e.time_range.end > e.time_range.start)
    if not spans:
        return 0.0, 0.0, 0.0, 0.0, 0
    busy = short = long = 0.0
    reach = spans[0][0]
    for start, end in spans:
        gap = start - reach
        if gap > 0:
            if gap < SHORT_GAP_US:
                short += gap
            else:
                long += gap
        busy += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return (reach - spans[0][0]) / 1e3, busy / 1e3, short / 1e3, long / 1e3, len(spans)


def main() -> None:
    cuda = torch.cuda.is_available()
    work = FULL if cuda and "--smoke" not in sys.argv else SMOKE
    device = torch.device("cuda" if cuda else "cpu")

    def timed(fn):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        out = fn()
        if cuda:
            torch.cuda.synchronize()
        return out, time.perf_counter() - started

    problems = bench_problems(work["prompts"])
    folder = Path(tempfile.mkdtemp(prefix="profile-rl-"))
    checkpoint = build_checkpoint(folder / "model", work, problems, torch.bfloat16 if cuda else torch.float32)
    dtype = torch.bfloat16 if cuda else torch.float32
    model = load_model(checkpoint, device=device, dtype=dtype)
    model.train()
    tokenizer = load_tokenizer(checkpoint)
    n = work["prompts"] * work["group_size"]
    config = RLConfig(prompts_per_step=work["prompts"], group_size=work["group_size"],
                      max_new_tokens=work["max_new_tokens"], kl_coef=0.0, mgpo_lambda=0.0, micro_batch_size=64,
                      generation_batch_size=max(256, n), require_think=False,
                      dtype="bfloat16" if cuda else "float32")
    generator = make_generator((model, tokenizer), backend="auto", batch_size=config.generation_batch_size)
    engine = getattr(generator, "engine", None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=cuda)

    def update(batch, logprobs_fn=token_logprobs):
        stats = accumulate_gradients(model, batch, config, device, logprobs_fn=logprobs_fn)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return stats

    for step in range(3):  # warm-up: graphs, autotuning, allocator
        groups = rollout(generator, problems, config, seed=step, reward_fn=ours_reward)
        update(build_batch(groups, tokenizer.pad_token_id))

    print("== one step, phase by phase (s)")
    if engine is not None:
        _, load_s = timed(generator.copy_live_weights)
        print(f"weight copy into the engine {load_s:.4f}")
    groups, rollout_s = timed(lambda: rollout(generator, problems, config, seed=7, reward_fn=ours_reward))
    if engine is not None:
        s = engine.stats
        print(f"rollout {rollout_s:.4f}: prefill {s['prefill_seconds']:.4f}, decode {s['decode_seconds']:.4f} "
              f"({s['decode_steps']} steps, {s['decode_windows']} windows, "
              f"{1e3 * s['decode_seconds'] / max(1, s['decode_steps']):.3f} ms/step), rest "
              f"{rollout_s - s['prefill_seconds'] - s['decode_seconds']:.4f}")
    batch, batch_s = timed(lambda: build_batch(groups, tokenizer.pad_token_id))
    print(f"build_batch {batch_s:.4f} ({batch.n_sequences} rows x {batch.input_ids.shape[1]} tokens)")
    _, grads_s = timed(lambda: accumulate_gradients(model, batch, config, device))
    _, clip_s = timed(lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
    _, opt_s = timed(lambda: (optimizer.step(), optimizer.zero_grad(set_to_none=True)))
    print(f"forward/backward {grads_s:.4f}, clip {clip_s:.4f}, optimiser {opt_s:.4f}")

    if engine is not None:
        default_window = engine.config.decode_window
        for window in (8, 16, 32):
            engine.config.decode_window = window
            _, seconds = timed(lambda: rollout(generator, problems, config, seed=9, reward_fn=ours_reward))
            s = engine.stats
            print(f"decode_window {window}: rollout {seconds:.4f} s, decode "
                  f"{1e3 * s['decode_seconds'] / max(1, s['decode_steps']):.3f} ms/step")
        engine.config.decode_window = default_window

    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    if engine is not None and cuda:
        with torch.profiler.profile(activities=activities) as prof:
            timed(lambda: rollout(generator, problems, config, seed=8, reward_fn=ours_reward))
        span, busy, short, long, count = kernel_gaps(prof)
        steps = max(1, engine.stats["decode_steps"])
        print(f"== generate under the profiler: {count} kernels, span {span:.1f} ms, busy {busy:.1f} ms, "
              f"gaps < {SHORT_GAP_US:g} us {short:.1f} ms, longer gaps {long:.1f} ms; per decode step: "
              f"busy {busy / steps:.3f} ms, short gaps {short / steps:.3f} ms, long gaps {long / steps:.3f} ms, "
              f"{count / steps:.0f} kernels")

    with torch.profiler.profile(activities=activities) as prof:
        _, wall = timed(lambda: update(batch))
    if cuda:
        span, busy, short, long, count = kernel_gaps(prof)
        print(f"== update under the profiler: wall {wall:.3f} s, {count} kernels, busy {busy:.1f} ms, short gaps "
              f"{short:.1f} ms, long gaps {long:.1f} ms")
        print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=25, max_name_column_width=70))

    print("== the update with torch.compile(token_logprobs), static shapes (--dynamic: then dynamic ones)")
    other = build_batch(rollout(generator, problems, config, seed=10, reward_fn=ours_reward), tokenizer.pad_token_id)
    eager = min(timed(lambda: update(batch))[1] for _ in range(3))
    for dynamic in (False,) if "--dynamic" not in sys.argv else (False, True):  # dynamic: ~3 min to compile
        try:
            torch._dynamo.reset()
            compiled = torch.compile(token_logprobs, dynamic=dynamic)
            _, first = timed(lambda: update(batch, compiled))
            _, second = timed(lambda: update(other, compiled))  # another width: a recompile unless dynamic
            times = [timed(lambda: update(b, compiled))[1] for b in (batch, other, batch)]
            print(f"dynamic={dynamic}: first call {first:.2f} s, next width {second:.2f} s "
                  f"({batch.input_ids.shape[1]} then {other.input_ids.shape[1]} tokens); compiled "
                  f"{min(times):.4f} s vs eager {eager:.4f} s")
        except Exception:  # a diagnostic: report and go on
            traceback.print_exc(limit=3)


if __name__ == "__main__":
    main()
