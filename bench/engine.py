"""Rollout throughput: transformers ``generate``, transformers ``generate_batch``, and the native engine.

Run (H200, about 5 minutes): ``python bench/engine.py``; on CPU: ``OMP_NUM_THREADS=1 python bench/engine.py --smoke``
(tiny sizes, writes engine_smoke.json instead).
Writes ``$OUT/engine.json`` when the environment variable OUT is set, else ``bench/results/engine.json``.

Per model shape (Qwen2.5-0.5B and Qwen2.5-1.5B configurations, random weights, bf16 on GPU):

* workload: 256 prompts of random tokens, lengths uniform in 128..1024, 1024 new tokens each, no stop token (the
  models have no eos; the engine runs with ``ignore_eos``). Greedy decoding for all three; the native engine is also
  timed with temperature-1 sampling.
* ``generate``: left-padded batches of 64, on a subset (the first 64 prompts, 256 new tokens): output tokens / s of
  that subset. Its per-step cost is dominated by launch overhead, so the rate is about the same for longer outputs.
* ``generate_batch`` (transformers' continuous batching, when the installed transformers has it): the first 128
  prompts, 256 new tokens.
* native: the full workload, end to end (prefill + decode; graph capture excluded, reported apart), and the
  decode phase alone.
* roofline of the decode phase: every decode step must read the weights once and the K/V of every context token
  of every running sequence; bytes = steps x weight bytes + context tokens read x K/V bytes per token, over the
  measured device-to-device copy bandwidth (bytes read + written / s). The steps and context tokens are those the
  native engine's schedule actually ran.
* agreement on the same weights: greedy tokens and log-probs of transformers ``generate`` vs native on the first
  32 prompts, 64 new tokens: the share of tokens before the first divergence, and the largest |log-prob
  difference| over those tokens.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import platform
import random
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

from vibethinker.generate import SamplingParams
from vibethinker.generate.native import EngineConfig, LLMEngine
from vibethinker.generate.native.weights import live_tensors
from vibethinker.utils.files import write_json_atomic

SHAPES = {  # from the models' config.json files
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936, max_position_embeddings=131072,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True),
    "smoke": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=512, max_position_embeddings=1024, rope_theta=10000.0,
                  rms_norm_eps=1e-6, tie_word_embeddings=True),
}
FULL = dict(prompts=256, min_len=128, max_len=1024, new_tokens=1024, hf_prompts=64, hf_new_tokens=256,
            cb_prompts=128, cb_new_tokens=256, agree_prompts=32, agree_tokens=64)
SMOKE = dict(prompts=12, min_len=8, max_len=48, new_tokens=24, hf_prompts=4, hf_new_tokens=8, cb_prompts=4,
             cb_new_tokens=8, agree_prompts=4, agree_tokens=16)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def copy_bandwidth(device: torch.device) -> float:
    """Bytes read + written per second by a large tensor copy on ``device`` (median of 10)."""
    count = (1 << 30) if device.type == "cuda" else (1 << 26)
    src, dst = torch.randn(count // 4, device=device), torch.empty(count // 4, device=device)
    times = []
    for _ in range(12):
        sync(device)
        started = time.perf_counter()
        dst.copy_(src)
        sync(device)
        times.append(time.perf_counter() - started)
    return 2 * count / sorted(times[2:])[len(times[2:]) // 2]


def build_model(shape: str, device: torch.device, dtype: torch.dtype) -> Qwen2ForCausalLM:
    fields = dict(SHAPES[shape])
    theta = fields.pop("rope_theta")
    config = Qwen2Config(**fields, rope_parameters={"rope_type": "default", "rope_theta": theta},
                         bos_token_id=None, eos_token_id=None, pad_token_id=0, attn_implementation="sdpa")
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    # `.to(bfloat16)` also rounds the RoPE frequencies (a float buffer) to bf16, which loading a checkpoint with
    # torch_dtype does not: keep them in fp32, or transformers' angles drift from the exact ones that the native
    # engine computes (measured: 0.27 of greedy tokens agreeing in fp32 after such a round trip, 1.0 without it).
    frequencies = {name: buffer.clone() for name, buffer in model.named_buffers() if name.endswith("inv_freq")}
    model = model.to(dtype).eval()
    for name, buffer in frequencies.items():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        module.register_buffer(name.rsplit(".", 1)[1], buffer, persistent=False)
    model.generation_config = GenerationConfig(pad_token_id=0)  # no eos: every sequence runs to max_new_tokens
    return model


def hf_generate(model, prompts: list[list[int]], new_tokens: int, batch: int, logprobs: bool = False):
    """Greedy ``model.generate`` in left-padded batches -> (generated ids per prompt, log-probs or None, seconds)."""
    device = model.device
    outputs, scores, seconds = [], [], 0.0
    for start in range(0, len(prompts), batch):
        chunk = prompts[start:start + batch]
        width = max(map(len, chunk))
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, p in enumerate(chunk):
            ids[row, width - len(p):], mask[row, width - len(p):] = torch.tensor(p), 1
        sync(device)
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                                 max_new_tokens=new_tokens, pad_token_id=0,
                                 return_dict_in_generate=True, output_logits=logprobs)
        sync(device)
        seconds += time.perf_counter() - started
        generated = out.sequences[:, width:]
        outputs += generated.tolist()
        if logprobs:
            logits = torch.stack(out.logits, dim=1).float()  # (batch, steps, vocab)
            scores += torch.log_softmax(logits, -1).gather(2, generated[:, :, None])[:, :, 0].tolist()
    return outputs, scores or None, seconds


def hf_generate_batch(model, prompts: list[list[int]], new_tokens: int) -> dict:
    if not hasattr(model, "generate_batch"):
        return {"error": "transformers has no generate_batch"}
    config = GenerationConfig(max_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    options = {"progress_bar": False} if "progress_bar" in inspect.signature(model.generate_batch).parameters else {}
    sync(model.device)
    started = time.perf_counter()
    try:
        with torch.no_grad():  # not inference_mode: its static tensors are updated in place between calls
            out = model.generate_batch(inputs=prompts, generation_config=config, **options)
    except Exception as error:  # noqa: BLE001 (a failure of transformers' feature is a result, not a crash)
        return {"error": f"{type(error).__name__}: {error}"[:300]}
    sync(model.device)
    seconds = time.perf_counter() - started
    tokens = sum(len(o.generated_tokens) for o in out.values())
    return {"prompts": len(prompts), "new_tokens": new_tokens, "tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_s": round(tokens / seconds, 1)}


def run_native(engine: LLMEngine, prompts, sampling: SamplingParams) -> dict:
    started = time.perf_counter()
    seqs = engine.generate(prompts, sampling, stop_ids=[])
    seconds = time.perf_counter() - started
    stats = dict(engine.stats)
    tokens = sum(seq.num_generated for seq in seqs)
    return {"tokens": tokens, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
            "decode_tokens_per_s": round(stats["decode_tokens"] / max(stats["decode_seconds"], 1e-9), 1),
            **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items()}}, seqs


def agreement(hf_ids, hf_logprobs, native_seqs) -> dict:
    same, total, diffs, exact = 0, 0, [], 0
    for ref, ref_lp, seq in zip(hf_ids, hf_logprobs, native_seqs):
        ours = seq.generated_ids
        prefix = next((i for i, (a, b) in enumerate(zip(ref, ours)) if a != b), min(len(ref), len(ours)))
        same, total, exact = same + prefix, total + len(ref), exact + (prefix == len(ref))
        diffs += [abs(a - b) for a, b in zip(ref_lp[:prefix], seq.logprobs[:prefix])]
    return {"prompts": len(hf_ids), "tokens_before_first_divergence_share": round(same / total, 4),
            "identical_sequences": exact, "max_abs_logprob_diff": round(max(diffs, default=0.0), 5),
            "mean_abs_logprob_diff": round(sum(diffs) / max(len(diffs), 1), 6)}


def fp32_agreement(model, prompts, new_tokens: int, device: torch.device, max_len: int) -> dict:
    """Greedy tokens and log-probs of transformers vs native with both in float32 on the GPU."""
    model.float()
    try:
        ref_ids, ref_logprobs, _ = hf_generate(model, prompts, new_tokens, batch=len(prompts), logprobs=True)
        engine = LLMEngine(model.config, EngineConfig(max_num_seqs=64, max_model_len=max_len, dtype="float32"),
                           device=device)
        engine.load(live_tensors(model), "fp32")
        _, seqs = run_native(engine, prompts, SamplingParams(temperature=0, max_new_tokens=new_tokens))
        del engine
        return agreement(ref_ids, ref_logprobs, seqs)
    except Exception as error:  # noqa: BLE001 (recorded: the fp32 path is a check, not the benchmark)
        return {"error": f"{type(error).__name__}: {error}"[:300]}


def bench_shape(shape: str, sizes: dict, device: torch.device, dtype: torch.dtype, bandwidth: float) -> dict:
    rng = random.Random(0)
    vocab = SHAPES[shape]["vocab_size"]
    prompts = [[rng.randrange(1, vocab) for _ in range(rng.randint(sizes["min_len"], sizes["max_len"]))]
               for _ in range(sizes["prompts"])]
    model = build_model(shape, device, dtype)
    result: dict = {"shape": shape, "parameters": sum(p.numel() for p in model.parameters()),
                    "prompts": len(prompts), "prompt_tokens": sum(map(len, prompts)),
                    "new_tokens_per_prompt": sizes["new_tokens"]}

    hf_generate(model, prompts[:2], 4, batch=2)  # warm-up
    subset = prompts[:sizes["hf_prompts"]]
    _, _, seconds = hf_generate(model, subset, sizes["hf_new_tokens"], batch=64)
    tokens = len(subset) * sizes["hf_new_tokens"]
    result["hf_generate"] = {"prompts": len(subset), "new_tokens": sizes["hf_new_tokens"], "batch": 64,
                             "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 1)}
    few = prompts[:sizes["agree_prompts"]]  # before generate_batch, which switches the attention implementation
    ref_ids, ref_logprobs, _ = hf_generate(model, few, sizes["agree_tokens"], batch=len(few), logprobs=True)
    if device.type == "cuda":  # bf16 greedy diverges early on random weights (near-flat logits): check in fp32 too
        max_len = sizes["max_len"] + sizes["new_tokens"]
        result["greedy_agreement_fp32"] = fp32_agreement(model, few, sizes["agree_tokens"], device, max_len)
        model.to(dtype)
    result["hf_generate_batch"] = hf_generate_batch(model, prompts[:sizes["cb_prompts"]], sizes["cb_new_tokens"])

    started = time.perf_counter()
    max_len = sizes["max_len"] + sizes["new_tokens"]
    engine = LLMEngine(model.config, EngineConfig(max_num_seqs=256, max_model_len=max_len, ignore_eos=True),
                       device=device)
    engine.load(live_tensors(model), shape)
    sync(device)
    result["native_setup_seconds"] = round(time.perf_counter() - started, 2)  # includes CUDA-graph capture
    result["native_kv_blocks"] = engine.kv.num_blocks
    for temperature in (0.0, 1.0):  # warm-up: compiles the sampler kernel's greedy and sampling variants
        engine.generate(prompts[:4], SamplingParams(temperature=temperature, max_new_tokens=8, seed=0), [])
    # Warm-up of the prefill path on the whole workload's shapes (kernel selection, allocator growth): measured
    # once without it, the first full run spent 11.9 s in prefill and the second 0.6 s.
    engine.generate(prompts, SamplingParams(temperature=0, max_new_tokens=2), [])
    greedy = SamplingParams(temperature=0, max_new_tokens=sizes["new_tokens"])
    result["native"], _ = run_native(engine, prompts, greedy)
    result["native_sampled_t1"], _ = run_native(engine, prompts, SamplingParams(
        temperature=1.0, max_new_tokens=sizes["new_tokens"], seed=0))

    spec = engine.model.spec
    weight_bytes = sum(p.numel() * p.element_size() for p in engine.model.parameters())
    kv_bytes_per_token = 2 * spec.num_layers * spec.num_kv_heads * spec.head_dim * dtype.itemsize
    stats = result["native"]
    decode_bytes = stats["decode_steps"] * weight_bytes + stats["decode_context_tokens"] * kv_bytes_per_token
    roofline = stats["decode_tokens"] / (decode_bytes / bandwidth)
    result["roofline"] = {"copy_bandwidth_gb_s": round(bandwidth / 1e9, 1), "weight_bytes": weight_bytes,
                          "kv_bytes_per_token": kv_bytes_per_token, "decode_bytes": decode_bytes,
                          "decode_tokens_per_s_bound": round(roofline, 1),
                          "native_decode_share": round(stats["decode_tokens_per_s"] / roofline, 3)}
    result["speedup_vs_generate"] = round(stats["tokens_per_s"] / result["hf_generate"]["tokens_per_s"], 1)
    if "tokens_per_s" in result["hf_generate_batch"]:
        result["speedup_vs_generate_batch"] = round(
            stats["tokens_per_s"] / result["hf_generate_batch"]["tokens_per_s"], 1)

    _, seqs = run_native(engine, few, SamplingParams(temperature=0, max_new_tokens=sizes["agree_tokens"]))
    result["greedy_agreement"] = agreement(ref_ids, ref_logprobs, seqs)
    del engine, model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny model and workload (CPU check)")
    parser.add_argument("--shapes", nargs="*", default=None, help=f"subset of {', '.join(SHAPES)}")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    sizes = SMOKE if args.smoke else FULL
    shapes = args.shapes or (["smoke"] if args.smoke else ["qwen2.5-0.5b", "qwen2.5-1.5b"])
    bandwidth = copy_bandwidth(device)
    import transformers

    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "transformers": transformers.__version__, "dtype": str(dtype),
              "workload": sizes, "results": [bench_shape(s, sizes, device, dtype, bandwidth) for s in shapes]}
    print(f"{'shape':<14}{'generate':>10}{'gen_batch':>11}{'native':>10}{'decode':>10}{'bound':>10}"
          f"{'share':>7}{'x gen':>7}{'x batch':>8}{'agree':>7}{'max dlp':>9}")
    for r in report["results"]:
        batch = r["hf_generate_batch"].get("tokens_per_s", float("nan"))
        print(f"{r['shape']:<14}{r['hf_generate']['tokens_per_s']:>10.0f}{batch:>11.0f}"
              f"{r['native']['tokens_per_s']:>10.0f}{r['native']['decode_tokens_per_s']:>10.0f}"
              f"{r['roofline']['decode_tokens_per_s_bound']:>10.0f}{r['roofline']['native_decode_share']:>7.2f}"
              f"{r['speedup_vs_generate']:>7.1f}{r.get('speedup_vs_generate_batch', float('nan')):>8.1f}"
              f"{r['greedy_agreement']['tokens_before_first_divergence_share']:>7.2f}"
              f"{r['greedy_agreement']['max_abs_logprob_diff']:>9.4f}")
        if "error" in r["hf_generate_batch"]:
            print(f"  generate_batch: {r['hf_generate_batch']['error']}")
    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(__file__).parent / "results"
    name = "engine_smoke.json" if args.smoke else "engine.json"
    print(f"wrote {write_json_atomic(out_dir / name, report)}")


if __name__ == "__main__":
    main()
