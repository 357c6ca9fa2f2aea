"""Where the time of our RL step's sampling goes: the native engine on the rl_vs_trl workload, under the profiler.

One generate call of 16 prompts x 8 samples x 256 tokens (random Qwen2 of the Qwen2.5-0.5B shape, vocab 16k,
bf16, ``ignore_eos``) after a warm-up call; prints the engine's own prefill/decode split (with the paged and the
SDPA prefill), the decode time per step with decode windows overlapped (the default) and read one at a time, and
with windows of 32 steps, the GPU busy time and the gaps between kernels per decode step, and the profiler's top
operators by GPU and by CPU time. No result file:
this is a diagnostic for the next optimisation, run on the GPU machine (``python bench/profile_decode.py``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_rl_step import kernel_gaps  # noqa: E402
from rl_vs_trl import FULL, SMOKE, bench_problems, build_checkpoint  # noqa: E402

from vibethinker.generate import SamplingParams, make_generator  # noqa: E402
from vibethinker.prompts import render_prompt  # noqa: E402


def main() -> None:
    cuda = torch.cuda.is_available()
    work = FULL if cuda and "--smoke" not in sys.argv else SMOKE  # --smoke / no GPU: a seconds-long CPU check

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    problems = bench_problems(work["prompts"])
    folder = Path(tempfile.mkdtemp(prefix="profile-decode-"))
    checkpoint = build_checkpoint(folder / "model", work, problems, torch.bfloat16 if cuda else torch.float32)
    generator = make_generator(str(checkpoint), backend="native", batch_size=256, ignore_eos=True)
    prompts = [render_prompt(generator.tokenizer, p) for p in problems]
    sampling = SamplingParams(n=work["group_size"], temperature=1.0, top_p=1.0, max_new_tokens=work["max_new_tokens"],
                              seed=0)
    generator.generate(prompts, sampling)  # warm-up: graphs, Triton autotuning
    runner = generator.engine.runner
    paged_limit = runner.paged_prefill_max_tokens
    # The two prefill attentions on the same work: one paged-kernel launch per layer, then one SDPA call per
    # sequence and layer (paged_prefill_max_tokens 0), then the paged one again (the configured default).
    for label, limit in (("paged prefill", paged_limit), ("sdpa prefill", 0), ("paged prefill", paged_limit)):
        runner.paged_prefill_max_tokens = limit
        sync()
        started = time.perf_counter()
        generator.generate(prompts, sampling)
        sync()
        stats = generator.engine.stats
        print(f"{label}: generate {time.perf_counter() - started:.3f} s; prefill {stats['prefill_seconds']:.3f} s "
              f"in {stats['prefill_steps']} steps ({stats['paged_prefill_steps']} paged, "
              f"{stats['prefill_tokens']} tokens); decode {stats['decode_seconds']:.3f} s in "
              f"{stats['decode_steps']} steps = {1e3 * stats['decode_seconds'] / max(1, stats['decode_steps']):.2f} "
              "ms/step")
    runner.paged_prefill_max_tokens = paged_limit
    # The overlap A/B: the next decode window queued behind the running one (the default), then each window
    # read before the next is queued, then windows of 32 steps; the same engine (the configuration is read per window).
    engine_config = generator.engine.config
    default_window = engine_config.decode_window
    for label, overlap, window in (("overlapped windows of 16", True, None), ("one window at a time", False, None),
                                   ("overlapped windows of 32", True, 32), ("overlapped windows of 16", True, None)):
        engine_config.overlap_windows, engine_config.decode_window = overlap, window
        sync()
        generator.generate(prompts, sampling)
        sync()
        stats = generator.engine.stats
        print(f"{label}: decode {stats['decode_seconds']:.3f} s in {stats['decode_steps']} steps = "
              f"{1e3 * stats['decode_seconds'] / max(1, stats['decode_steps']):.3f} ms/step "
              f"({stats['decode_windows']} windows, {stats['follow_on_windows']} queued behind another)")
    engine_config.overlap_windows, engine_config.decode_window = True, default_window
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with torch.profiler.profile(activities=activities) as prof:
        generator.generate(prompts, sampling)
        sync()
    steps = max(1, generator.engine.stats["decode_steps"])
    events = prof.key_averages()
    gpu_us = sum(e.self_device_time_total for e in events)
    print(f"GPU busy per decode step (all kernels / decode steps): {gpu_us / steps / 1e3:.3f} ms")
    if cuda:
        span, busy, short, long, kernels = kernel_gaps(prof)
        print(f"kernels of the call: span {span:.1f} ms, busy {busy:.1f} ms, gaps < 4 us {short:.1f} ms, longer gaps "
              f"{long:.1f} ms; per decode step: busy {busy / steps:.3f} ms, short gaps {short / steps:.3f} ms, long "
              f"gaps {long / steps:.3f} ms, {kernels / steps:.0f} kernels")
    if cuda:
        print(events.table(sort_by="self_device_time_total", row_limit=18, max_name_column_width=60))
    print(events.table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=60))


if __name__ == "__main__":
    main()
