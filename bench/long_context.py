"""Long context on one GPU: SFT, the RL update and the native engine at 4K-64K tokens, ours vs today's path.

Run on a GPU: ``python bench/long_context.py [--parts sft,rl,engine] [--seq-lens 4096,...]``; on CPU
``OMP_NUM_THREADS=1 python bench/long_context.py --smoke`` (a tiny shape, writes long_context_smoke.json).
Writes ``$OUT/long_context.json`` when OUT is set, else ``bench/results/long_context.json``: one row per
measurement ``{part, variant, model_shape, seq_len, ok, peak_gib, tokens_per_s, mfu, gpu, ...}``.

Model: the Qwen2.5-3B shape (36 layers, hidden 2048, 16 heads / 2 KV heads, vocab 151,936, tied embeddings),
random weights, fp32 master weights + fused AdamW + bf16 autocast, as the trainers run it.

* ``sft``: one optimiser step on one packed row of ``seq_len`` tokens holding 4 documents (positions restart at
  each), every token a target. ``new``: :func:`vibethinker.sft.trainer.micro_batch_loss` with gradient
  checkpointing and the automatic attention kernel (chunked output layer, varlen attention). ``baseline``: the
  previous path, full ``[T, V]`` logits cast to fp32 and transformers' SDPA with its materialised mask, with
  gradient checkpointing too (as the 3B recipe asks). ``new+compile``: ``new`` with each decoder layer compiled;
  ``new+liger``: ``new`` with Liger's fused RMSNorm / RoPE / SwiGLU kernels (measured last: the patch stays).
* ``rl``: one update (:func:`vibethinker.rl.trainer.accumulate_gradients` + AdamW) of ``rl_rows`` responses of
  ``seq_len`` tokens after a 512-token prompt. ``new``: chunked log-probs, gradient checkpointing, micro-batches by a
  token budget of 32,768 tokens (one row when longer). ``baseline``: the previous full-logits log-probs with
  gradient checkpointing (the issue's measurement; the trainer itself had none, which fits no 4K update with AdamW
  state on an H100), ``micro_batch_size=1``. Then ``new+engine``: the same update with a native
  engine on the GPU whose KV cache (half the free memory) is released for the update, as RL runs it.
* ``engine``: 16 prompts x 8 samples of 512 random tokens, ``--engine-new-tokens`` each (no stop), bf16.
  ``new``: chunked prefill of 8192 tokens and split-K decode where it pays; ``new+reserve``: also
  ``admission_reserve=1`` (admit only what can run to its limit); ``-splitk`` in a name turns split-K off;
  ``baseline``: the engine before: one-pass prefill, greedy admission, no split-K.

MFU counts 6N + attention FLOPs per token, ``6 * layers * hidden * document_length`` for causal attention
(fwd + bwd, the mean context being half the document), over the GPU's dense bf16 peak (H100 / H200 SXM:
989 TFLOP/s); the recomputation of checkpointing is not counted (model FLOPs).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import Qwen2Config, Qwen2ForCausalLM

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vibethinker.generate.native import EngineConfig, LLMEngine  # noqa: E402
from vibethinker.generate.native.weights import LiveWeightCopy  # noqa: E402
from vibethinker.generate.types import SamplingParams  # noqa: E402
from vibethinker.model.attention_backend import compile_decoder_layers, use_attention_backend  # noqa: E402
from vibethinker.model.fused_kernels import apply_fused_kernels  # noqa: E402
from vibethinker.model.checkpointing import enable_gradient_checkpointing  # noqa: E402
from vibethinker.rl.config import RLConfig  # noqa: E402
from vibethinker.rl.trainer import accumulate_gradients, token_logprobs  # noqa: E402
from vibethinker.rl.types import TrainingBatch  # noqa: E402
from vibethinker.sft.packing import IGNORE_INDEX, PackedBatch  # noqa: E402
from vibethinker.sft.trainer import micro_batch_loss  # noqa: E402

SHAPES = {
    "qwen2.5-3b": dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                       num_attention_heads=16, num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1e6),
    "tiny": dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, tie_word_embeddings=True, rope_theta=1e4),
}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
PROMPT = 512
RL_TOKEN_BUDGET = 32768  # tokens per forward/backward pass of the new RL update (one row when longer)
DOCUMENTS = 4


def gpu_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def peak_flops(device: torch.device) -> float | None:
    name = gpu_name(device)
    if "PCIe" in name and "H100" in name:
        return 756e12
    return next((flops for key, flops in PEAK_BF16.items() if key in name), None)


def build_model(shape: str, max_len: int, device: torch.device) -> Qwen2ForCausalLM:
    fields = dict(SHAPES[shape])
    theta = fields.pop("rope_theta")
    config = Qwen2Config(**fields, max_position_embeddings=max_len,
                         rope_parameters={"rope_type": "default", "rope_theta": theta}, bos_token_id=None,
                         eos_token_id=None, pad_token_id=0, attn_implementation="sdpa", use_cache=False)
    torch.manual_seed(0)
    with torch.device(device):
        return Qwen2ForCausalLM(config)


def flops_per_token(model, document: int) -> float:
    config = model.config
    n = sum(p.numel() for p in model.parameters())
    return 6 * n + 6 * config.num_hidden_layers * config.hidden_size * document


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_memory(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2) if device.type == "cuda" else None


def timed(fn, device, repeats: int) -> list[float]:
    """Seconds of each call after one warm-up call (compilation, allocator growth)."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - started)
    return times


def measure(row: dict, fn, device, repeats: int, tokens: int, flops: float) -> dict:
    reset_memory(device)
    try:
        times = timed(fn, device, repeats)
    except torch.OutOfMemoryError as error:
        row.update(ok=False, peak_gib=None, tokens_per_s=None, mfu=None, error=str(error).split("\n")[0][:160])
        return row
    finally:
        gc.collect()
    seconds = sorted(times)[len(times) // 2]
    peak = peak_flops(device)
    row.update(ok=True, peak_gib=peak_gib(device), tokens_per_s=round(tokens / seconds, 1), seconds=round(seconds, 3),
               mfu=round(tokens / seconds * flops / peak, 4) if peak else None)
    return row


# ---------------------------------------------------------------------------------------------------------- SFT

def packed_row(seq_len: int, vocab: int, device) -> PackedBatch:
    document = seq_len // DOCUMENTS
    ids = torch.randint(1, vocab, (1, seq_len), device=device)
    positions = torch.arange(seq_len, device=device) % document
    labels = torch.roll(ids, -1, dims=1)
    labels[0, document - 1::document] = IGNORE_INDEX  # a document's last token has no target
    return PackedBatch(ids, positions[None], labels)


def baseline_sft_loss(model, batch: PackedBatch, device, normaliser: int):
    """The SFT loss before issue 18: full logits, cast to fp32, one cross-entropy."""
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
    summed = F.cross_entropy(logits.float().flatten(0, 1), batch.labels.flatten(), ignore_index=IGNORE_INDEX,
                             reduction="sum")
    return summed / normaliser, float(summed.detach())


def sft_rows(model, optimizer, shape: str, seq_lens, baseline_lens, compile_lens, device, repeats: int,
             compile_kept_layers=()) -> list[dict]:
    """``new``, ``new+compile`` (SFT's torch_compile), then for each count in ``compile_kept_layers`` the compiled
    step with that many decoder layers not checkpointed (``new+compile-ckptN``: SFT's checkpointed_layers = N), then
    ``baseline`` (full logits, SDPA's materialised mask)."""
    rows = []
    n_layers = len(model.get_decoder().layers)
    model.train()
    variants = [("new", seq_lens, None), ("new+compile", compile_lens, None)]
    variants += [(f"new+compile-ckpt{n_layers - kept}", compile_lens, n_layers - kept) for kept in compile_kept_layers]
    for variant, lengths, checkpointed in variants + [("baseline", baseline_lens, None)]:
        enable_gradient_checkpointing(model, checkpointed)
        compile_layers(model, variant.startswith("new+compile"))
        for seq_len in lengths:
            batch = packed_row(seq_len, model.config.vocab_size, device)
            if variant.startswith("new"):
                backend = use_attention_backend(model, "auto", packed=True)
                loss_fn = micro_batch_loss
            else:
                model.set_attn_implementation("sdpa")
                backend, loss_fn = "sdpa", baseline_sft_loss

            def step():
                loss, _ = loss_fn(model, batch, device, batch.n_target_tokens)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            row = dict(part="sft", variant=variant, model_shape=shape, seq_len=seq_len, gpu=gpu_name(device),
                       attention=backend, documents=DOCUMENTS,
                       checkpointed_layers=n_layers if checkpointed is None else checkpointed)
            rows.append(measure(row, step, device, repeats, seq_len, flops_per_token(model, seq_len // DOCUMENTS)))
            optimizer.zero_grad(set_to_none=True)
            print(json.dumps(rows[-1]), flush=True)
    model.gradient_checkpointing_disable()
    return rows


def sft_gradient_checks(model, device, seq_len: int) -> list[dict]:
    """Loss and gradients of the new SFT path against the previous one at ``seq_len`` (no checkpointing): the
    previous path run twice (the noise floor of bf16 autocast and non-deterministic kernels), the chunked output
    layer alone (SDPA both), then the chunked layer with the automatic varlen attention."""
    batch = packed_row(seq_len, model.config.vocab_size, device)

    def gradients(chunked: bool, attention: str):
        model.set_attn_implementation(attention) if attention == "sdpa" else use_attention_backend(model, "auto", True)
        loss_fn = micro_batch_loss if chunked else baseline_sft_loss
        loss, _ = loss_fn(model, batch, device, batch.n_target_tokens)
        loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        model.zero_grad(set_to_none=True)
        return float(loss.detach()), grads

    base_loss, base = gradients(False, "sdpa")
    norm = sum(float(g.float().norm() ** 2) for g in base.values()) ** 0.5
    rows = []
    for name, chunked, attention in (("baseline again", False, "sdpa"), ("chunked head, sdpa", True, "sdpa"),
                                     ("chunked head, auto attention", True, "auto")):
        loss, grads = gradients(chunked, attention)
        diff = sum(float((grads[n] - base[n]).float().norm() ** 2) for n in base) ** 0.5
        rows.append(dict(part="sft", variant="check", compared=name, seq_len=seq_len,
                         attention=model.config._attn_implementation, loss_rel_diff=abs(loss - base_loss) / base_loss,
                         grad_rel_diff=diff / norm, gpu=gpu_name(device)))
        del grads
        print(json.dumps(rows[-1]), flush=True)
    del base
    reset_memory(device)
    return rows


def compile_layers(model, on: bool) -> None:
    """SFT's ``torch_compile`` (each decoder layer compiled), or undone."""
    if on:
        compile_decoder_layers(model)
    else:
        for layer in model.get_decoder().layers:
            layer._compiled_call_impl = None


def sft_liger_rows(model, optimizer, shape: str, seq_lens, device, repeats: int, check_seq_len: int,
                   kept_layers=()) -> list[dict]:
    """``new+liger``: the new path with Liger's fused RMSNorm / RoPE / SwiGLU (``fused_kernels``), last because the
    patch stays on the model; with its own gradient check against the previous path. Then, for each count in
    ``kept_layers``, the same step with that many decoder layers not checkpointed (``-ckptN``: N layers recompute),
    selective checkpointing that spends memory left over on less recomputation."""
    reference_batch = packed_row(check_seq_len, model.config.vocab_size, device)
    model.set_attn_implementation("sdpa")
    base_loss, _ = baseline_sft_loss(model, reference_batch, device, reference_batch.n_target_tokens)
    base_loss.backward()
    base = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    if not apply_fused_kernels(model, "auto"):
        return []
    use_attention_backend(model, "auto", packed=True)
    loss, _ = micro_batch_loss(model, reference_batch, device, reference_batch.n_target_tokens)
    loss.backward()
    diff = sum(float((p.grad - base[n]).float().norm() ** 2) for n, p in model.named_parameters()) ** 0.5
    norm = sum(float(g.float().norm() ** 2) for g in base.values()) ** 0.5
    model.zero_grad(set_to_none=True)
    rows = [dict(part="sft", variant="check", compared="liger kernels + chunked head + auto attention",
                 seq_len=check_seq_len, attention=model.config._attn_implementation,
                 loss_rel_diff=abs(float(loss) - float(base_loss)) / float(base_loss), grad_rel_diff=diff / norm,
                 gpu=gpu_name(device))]
    del base
    print(json.dumps(rows[-1]), flush=True)
    model.train()
    layers = model.get_decoder().layers
    for kept in [0] + list(kept_layers):
        enable_gradient_checkpointing(model, len(layers) - kept)  # the first ``kept`` layers keep activations
        for seq_len in seq_lens:
            batch = packed_row(seq_len, model.config.vocab_size, device)

            def step():
                loss, _ = micro_batch_loss(model, batch, device, batch.n_target_tokens)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            row = dict(part="sft", variant="new+liger" + (f"-ckpt{len(layers) - kept}" if kept else ""),
                       model_shape=shape, seq_len=seq_len, gpu=gpu_name(device), checkpointed_layers=len(layers) - kept,
                       attention=model.config._attn_implementation, documents=DOCUMENTS)
            rows.append(measure(row, step, device, repeats, seq_len, flops_per_token(model, seq_len // DOCUMENTS)))
            optimizer.zero_grad(set_to_none=True)
            print(json.dumps(rows[-1]), flush=True)
    model.gradient_checkpointing_disable()
    return rows


# ----------------------------------------------------------------------------------------------------------- RL

def rl_batch(rows: int, seq_len: int, vocab: int, device) -> TrainingBatch:
    width = PROMPT + seq_len
    ids = torch.randint(1, vocab, (rows, width), device=device)
    mask = torch.zeros(rows, width - 1, device=device)
    mask[:, PROMPT - 1:] = 1.0
    advantages = torch.tensor([(-1.0) ** i for i in range(rows)], device=device)
    return TrainingBatch(ids, torch.ones_like(ids), mask, advantages, torch.zeros(rows, width - 1, device=device),
                         [width] * rows)


def baseline_token_logprobs(model, input_ids, temperature, mask=None):
    """RL log-probs before issue 18: full logits, an fp32 log-softmax over the vocabulary."""
    with torch.autocast(device_type=input_ids.device.type, dtype=torch.bfloat16,
                        enabled=input_ids.device.type == "cuda"):
        logits = model(input_ids=input_ids, use_cache=False).logits
    log_dist = torch.log_softmax(logits[:, :-1].float() / temperature, dim=-1)
    logprobs = log_dist.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    dist = log_dist.detach()
    return logprobs, -(dist.exp() * dist).sum(-1)


def rl_rows(model, optimizer, shape: str, variants, rows_per_update: int, device, repeats: int) -> list[dict]:
    """``variants``: ``(name, lengths)`` pairs among new, baseline, new+engine, new+liger (after the SFT Liger
    rows, which patched the model), new+compile (each decoder layer compiled); a ``-ckptN`` suffix checkpoints N
    of the layers (RL's checkpointed_layers): baseline-ckpt0 is the RL trainer as it was before issue 18 (full
    logits, no checkpointing), which fits only where the card has room for every layer's activations beside the
    AdamW state (an H200 at 8K)."""
    out = []
    model.train()
    for variant, lengths in variants:
        compile_layers(model, variant.startswith("new+compile"))
        checkpointed = int(variant.split("-ckpt")[1]) if "-ckpt" in variant else None
        for seq_len in lengths:
            batch = rl_batch(rows_per_update, seq_len, model.config.vocab_size, device)
            engine = None
            enable_gradient_checkpointing(model, checkpointed)
            if variant.startswith("baseline"):
                config = RLConfig(micro_batch_size=1, device=device.type)
                logprobs_fn = baseline_token_logprobs
            else:
                config = RLConfig(micro_batch_tokens=max(seq_len + PROMPT, RL_TOKEN_BUDGET),
                                  gradient_checkpointing=True, device=device.type)
                logprobs_fn = token_logprobs
            if variant == "new+engine":  # the engine of the RL loop: bf16 weights and half the free memory as cache
                engine = LLMEngine(model.config, EngineConfig(max_model_len=seq_len + PROMPT, cuda_graphs=False),
                                   device=device)
                LiveWeightCopy(engine.model, model)()
                engine.generate([[1] * 16], SamplingParams(max_new_tokens=4, temperature=1.0, seed=0), [])
                cache_gib = engine.runner.kv_cache.numel() * engine.runner.kv_cache.element_size() / 2 ** 30

            def update():
                if engine is not None and engine.runner.kv_cache is None:
                    engine.runner.allocate_cache()
                if engine is not None:
                    engine.release_cache()
                accumulate_gradients(model, batch, config, device, logprobs_fn=logprobs_fn)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            tokens = rows_per_update * (seq_len + PROMPT)
            row = dict(part="rl", variant=variant, model_shape=shape, seq_len=seq_len, gpu=gpu_name(device),
                       rows=rows_per_update, prompt_tokens=PROMPT)
            if engine is not None:
                row["kv_cache_gib_released"] = round(cache_gib, 2)
            out.append(measure(row, update, device, repeats, tokens, flops_per_token(model, seq_len + PROMPT)))
            optimizer.zero_grad(set_to_none=True)
            engine = None  # frees the cache; a del would leave update() pointing at a deleted name
            print(json.dumps(out[-1]), flush=True)
    compile_layers(model, False)
    model.gradient_checkpointing_disable()
    return out


# ------------------------------------------------------------------------------------------------------- engine

def engine_rows(shape: str, new_tokens: list[int], samples: int, device, variants) -> list[dict]:
    out = []
    model = build_model(shape, PROMPT + max(new_tokens) + 16, device).to(torch.bfloat16).eval()
    prompts = [torch.randint(1, model.config.vocab_size, (PROMPT,)).tolist() for _ in range(16)]
    for variant in variants:
        for new in new_tokens:
            # baseline: one-pass prefill, greedy admission, no split-K (the engine before issue 18)
            settings = dict(prefill_chunk_tokens=None, decode_split_k=False) if variant.startswith("baseline") \
                else {}
            if "+reserve" in variant:
                settings["admission_reserve"] = 1.0
            if "-splitk" in variant:
                settings["decode_split_k"] = False
            if "+kv" in variant:  # a serving engine alone on the GPU: "+kv0.9" = kv_cache_fraction 0.9 (vLLM's 0.9)
                settings["kv_cache_fraction"] = float(variant.split("+kv")[1].split("+")[0])
            reset_memory(device)
            engine = LLMEngine(model.config, EngineConfig(max_model_len=PROMPT + new + 16, ignore_eos=True,
                                                          **settings), device=device)
            LiveWeightCopy(engine.model, model)()
            engine.generate(prompts[:2], SamplingParams(max_new_tokens=8, temperature=1.0, seed=0), [])
            sync(device)
            started = time.perf_counter()
            seqs = engine.generate(prompts, SamplingParams(n=samples // len(prompts), max_new_tokens=new,
                                                           temperature=1.0, seed=1), [])
            sync(device)
            seconds = time.perf_counter() - started
            tokens = sum(seq.num_generated for seq in seqs)
            stats = engine.stats
            out.append(dict(part="engine", variant=variant, **settings, model_shape=shape, seq_len=new, ok=True,
                            peak_gib=peak_gib(device), tokens_per_s=round(tokens / seconds, 1), mfu=None,
                            gpu=gpu_name(device), samples=len(seqs), prompt_tokens=PROMPT, seconds=round(seconds, 2),
                            preemptions=stats["preemptions"], kv_blocks=engine.kv.num_blocks,
                            prefill_seconds=round(stats["prefill_seconds"], 2),
                            decode_tokens_per_s=round(stats["decode_tokens"] / max(stats["decode_seconds"], 1e-9), 1)))
            print(json.dumps(out[-1]), flush=True)
            engine = None
    del model
    reset_memory(device)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="sft,rl,engine")
    parser.add_argument("--seq-lens", default="4096,8192,16384,32768,65536")
    parser.add_argument("--baseline-seq-lens", default="4096,8192,16384,32768")
    parser.add_argument("--compile-seq-lens", default="16384,32768")
    parser.add_argument("--liger-seq-lens", default="16384", help="new+liger rows (after RL: the patch stays)")
    parser.add_argument("--compile-kept-layers", default="",
                        help="new+compile-ckptN rows at --compile-seq-lens: layers not checkpointed")
    parser.add_argument("--liger-kept-layers", default="", help="new+liger-ckptN rows: layers not checkpointed")
    parser.add_argument("--rl-liger-seq-lens", default="8192", help="RL new+liger rows (after the SFT Liger rows)")
    parser.add_argument("--rl-seq-lens", default="4096,8192,16384,32768")
    parser.add_argument("--rl-baseline-seq-lens", default="4096,8192,16384")
    parser.add_argument("--rl-nockpt-seq-lens", default="",
                        help="RL baseline-ckpt0 rows: full logits and no checkpointing (the trainer before issue 18)")
    parser.add_argument("--rl-engine-seq-lens", default="16384")
    parser.add_argument("--rl-compile-seq-lens", default="", help="RL new+compile rows")
    parser.add_argument("--rl-compile-kept-layers", default="",
                        help="RL new+compile-ckptN rows at --rl-compile-seq-lens: layers not checkpointed")
    parser.add_argument("--rl-rows", type=int, default=4)
    parser.add_argument("--engine-new-tokens", default="4096")
    parser.add_argument("--engine-variants", default="new,baseline")
    parser.add_argument("--engine-samples", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--check-seq-len", type=int, default=2048)
    parser.add_argument("--smoke", action="store_true", help="tiny shape on CPU, small lengths")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    shape = "tiny" if args.smoke else "qwen2.5-3b"
    if args.smoke:
        args.seq_lens = args.baseline_seq_lens = args.rl_seq_lens = args.rl_baseline_seq_lens = "64,128"
        args.compile_seq_lens = args.liger_seq_lens = ""
        args.rl_engine_seq_lens, args.engine_new_tokens, args.engine_samples, args.check_seq_len = "", "32", 16, 64
    parts = set(args.parts.split(","))
    rows: list[dict] = []
    started = time.time()
    if "engine" in parts:
        rows += engine_rows(shape, ints(args.engine_new_tokens), args.engine_samples, device,
                            args.engine_variants.split(","))
    if parts & {"sft", "rl"}:
        longest = max(ints(args.seq_lens) + ints(args.rl_seq_lens)) + PROMPT + 16
        model = build_model(shape, longest, device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=device.type == "cuda")
        if "sft" in parts:
            rows += sft_gradient_checks(model, device, args.check_seq_len)
            rows += sft_rows(model, optimizer, shape, ints(args.seq_lens), ints(args.baseline_seq_lens),
                             ints(args.compile_seq_lens), device, args.repeats, ints(args.compile_kept_layers))
        if "rl" in parts:
            rows += rl_rows(model, optimizer, shape, [("new", ints(args.rl_seq_lens)),
                                                      ("baseline", ints(args.rl_baseline_seq_lens)),
                                                      ("baseline-ckpt0", ints(args.rl_nockpt_seq_lens)),
                                                      ("new+engine", ints(args.rl_engine_seq_lens)),
                                                      ("new+compile", ints(args.rl_compile_seq_lens))]
                            + [(f"new+compile-ckpt{len(model.get_decoder().layers) - kept}",
                                ints(args.rl_compile_seq_lens)) for kept in ints(args.rl_compile_kept_layers)],
                            args.rl_rows, device, args.repeats)
        if "sft" in parts and args.liger_seq_lens:
            rows += sft_liger_rows(model, optimizer, shape, ints(args.liger_seq_lens), device, args.repeats,
                                   args.check_seq_len, ints(args.liger_kept_layers))
            if "rl" in parts and rows[-1:] and rows[-1]["variant"].startswith("new+liger"):
                rows += rl_rows(model, optimizer, shape, [("new+liger", ints(args.rl_liger_seq_lens))], args.rl_rows,
                                device, args.repeats)
    name = "long_context_smoke.json" if args.smoke else "long_context.json"
    target = Path(args.out) if args.out else (Path(os.environ["OUT"]) / name if os.environ.get("OUT")
                                               else ROOT / "bench" / "results" / name)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "gpu": gpu_name(device),
               "torch": torch.__version__, "seconds": round(time.time() - started, 1), "rows": rows}
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(target)
    print(f"\n{'part':8} {'variant':11} {'seq_len':>8} {'ok':>3} {'peak GiB':>9} {'tok/s':>9} {'MFU':>6}")
    for row in rows:
        if row.get("variant") == "check":
            print(f"sft check: loss rel diff {row['loss_rel_diff']:.2e}, grad rel diff {row['grad_rel_diff']:.2e}"
                  f" ({row['attention']})")
            continue
        print(f"{row['part']:8} {row['variant']:11} {row['seq_len']:>8} {('yes' if row['ok'] else 'OOM'):>3} "
              f"{row['peak_gib'] if row['peak_gib'] is not None else '-':>9} "
              f"{row['tokens_per_s'] if row['tokens_per_s'] else '-':>9} "
              f"{row['mfu'] if row['mfu'] is not None else '-':>6}"
              + (f"  preemptions {row['preemptions']}" if 'preemptions' in row else ""))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
