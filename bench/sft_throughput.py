"""SFT training throughput on CPU: packed rows (block-diagonal mask, the baseline) vs length-sorted unpacked rows.

Run: OMP_NUM_THREADS=2 python bench/sft_throughput.py
Prints tokens/s of real (non-padding) tokens on the default tiny model and the embedded suite for packed rows of
1024 tokens (4 per step), unpacked micro-batches of 16 samples sorted within a global batch of 16 (the tiny recipe)
and of 32 (two micro-batches: less padding), their ratios to packing, and writes bench/results/sft_throughput.json.
"""

from __future__ import annotations

import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from vibethinker.data.synthetic.suite import SuiteConfig, generate_suite
from vibethinker.model import TinyModelConfig, build_tiny_model, train_tokenizer
from vibethinker.prompts import user_message
from vibethinker.sft.packing import collate_rows, epoch_steps, tokenize_problems
from vibethinker.sft.trainer import micro_batch_loss
from vibethinker.utils.runtime import configure_torch_threads, quiet_transformers

STEPS = 24


def measure(model, samples, packing: bool, rows: int, accum: int, pad_id: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    plan = epoch_steps(samples, 1024, packing, rows, accum, seed=0, epoch=0)
    device = torch.device("cpu")
    real, elapsed = 0, 0.0
    for index, step in enumerate(plan[:STEPS + 2]):
        started = time.perf_counter()
        batches = [collate_rows(samples, b, 1024 if packing else None, pad_id) for b in step]
        total = sum(b.n_target_tokens for b in batches)
        for batch in batches:
            micro_batch_loss(model, batch, device, total)[0].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index >= 2:  # the first two steps warm up allocators and kernels
            elapsed += time.perf_counter() - started
            real += sum(len(samples[i].input_ids) for b in step for row in b for i in row)
    return real / elapsed


def main() -> None:
    threads = configure_torch_threads()
    quiet_transformers()
    suite = generate_suite(SuiteConfig.uniform(seed=0, train=200, probe=5, test=5))
    problems = suite.splits["train"]
    texts = [user_message(p) for p in problems] + [t for p in problems for t in p.traces]
    tokenizer = train_tokenizer(texts, vocab_size=768)
    model = build_tiny_model(tokenizer, TinyModelConfig())
    samples = tokenize_problems(tokenizer, problems)
    packed = measure(model, samples, True, 4, 1, tokenizer.pad_token_id)
    unpacked = measure(model, samples, False, 16, 1, tokenizer.pad_token_id)  # as recipes/tiny.yaml
    unpacked_32 = measure(model, samples, False, 16, 2, tokenizer.pad_token_id)  # sorted within 32: less padding
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
        "cpus": threads, "torch": torch.__version__, "parameters": sum(p.numel() for p in model.parameters()),
        "packed_4x1024_tokens_per_s": round(packed),
        "unpacked_sorted16_tokens_per_s": round(unpacked), "ratio_sorted16_over_packed": round(unpacked / packed, 2),
        "unpacked_sorted32_tokens_per_s": round(unpacked_32),
        "ratio_sorted32_over_packed": round(unpacked_32 / packed, 2),
    }
    out = Path(__file__).parent / "results" / "sft_throughput.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
