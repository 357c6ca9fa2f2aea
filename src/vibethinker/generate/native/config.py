"""Settings of the native engine. Defaults suit one GPU shared with a trainer (RL) and the CPU test models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vibethinker.model.window import RopeScaling


class EngineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str | None = Field(None, description="Torch device; None: the live model's device, else cuda when "
                                                 "available, else cpu. *(our default)*")
    dtype: Literal["bfloat16", "float16", "float32"] | None = Field(
        None, description="Weights, activations and KV cache; None: bfloat16 on GPU, float32 on CPU. *(our default)*")
    block_size: int = Field(16, ge=1, description="Tokens per KV-cache block (the unit of allocation and of prefix "
                                                  "sharing). *(our default)*")
    max_num_seqs: int = Field(256, ge=1, description="Most sequences decoded together (the decode batch). "
                                                     "*(our default)*")
    max_num_batched_tokens: int = Field(16384, ge=1, description="Most new tokens in one prefill step; a longer "
                                                                 "prompt still runs, alone. *(our default)*")
    decode_split_k: bool = Field(True, description=(
        "Split each decode attention over several programs per sequence (split-K, flash-decoding) when a batch "
        "has fewer (sequence, KV head) pairs than the GPU has SMs and max_model_len is 8K or more: long contexts "
        "of a small batch then use the whole GPU. *(our default)*"))
    admission_reserve: float = Field(0.0, ge=0, le=1, description=(
        "Admit a waiting sequence only while the free cache blocks cover this share of what the running "
        "sequences and it still need to reach max_new_tokens; 0: admit whenever its prompt fits and preempt "
        "(recompute) the newest when the cache runs out; 1: never preempt. Long responses that mostly run to "
        "their limit (64K RL) thrash the cache at 0. *(our default: 0, vLLM's admission)*"))
    prefill_chunk_tokens: int | None = Field(8192, ge=16, description=(
        "A prefill longer than this (a long prompt, or a preempted sequence recomputing prompt and completion) "
        "runs in chunks of this many tokens, each attending over the cache so far: activations of one chunk "
        "whatever the length. None: one pass. *(our default; vLLM's chunked prefill)*"))
    max_model_len: int | None = Field(None, ge=2, description=(
        "Longest prompt + completion (a sequence reaching it ends with finish_reason 'length'); None: the model's "
        "window, max_position_embeddings or under YaRN original_max_position_embeddings * factor. A recipe sets "
        "it as sampling.max_model_len and refuses one above the window. *(our default)*"))
    rope_scaling: RopeScaling | None = Field(None, description=(
        "YaRN override written into the model's HF config before the RoPE table is built (a recipe stage's "
        "rope_scaling; the trainer's load_model applies the same one). A live model must already carry it. None: "
        "the RoPE of the config, YaRN included."))
    kv_cache_gib: float | None = Field(None, gt=0, description="KV-cache size in GiB; None: kv_cache_fraction of "
                                                               "the free GPU memory, 0.25 GiB on CPU. *(our default)*")
    kv_cache_fraction: float = Field(0.5, gt=0, le=0.95, description="Share of the GPU memory free after loading "
                                     "the weights given to the KV cache when kv_cache_gib is None; the rest stays "
                                     "for a trainer on the same GPU. *(our default)*")
    cuda_graphs: bool = Field(True, description="Capture decode steps in CUDA graphs (GPU only; CPU runs eager). "
                                                "*(our default)*")
    prefix_sharing: bool = Field(True, description="Reuse the cached KV of a shared prompt prefix (the n samples of "
                                                   "one prompt prefill it once). *(our default)*")
    paged_prefill_max_tokens: int = Field(
        512, ge=0, description="A prefill whose sequences each have at most this many new tokens attends in one "
        "launch of the paged kernel per layer, one query token per program (GPU); a longer one runs one SDPA call "
        "per sequence and layer, which re-reads less K/V for long prompts. 0: always SDPA. *(our default: 512; "
        "RL prompts are short and n samples of a prompt add a few uncached tokens each)*")
    fused_decode_attention: bool = Field(
        True, description="Decode steps on CUDA apply RoPE, write the new token's K/V and attend in one Triton "
        "kernel per layer (head sizes of 32 and up) instead of two. *(our default: fewer kernels a step)*")
    decode_window: int | None = Field(
        None, ge=1, description="Decode steps chained on the device between two host synchronisations (each "
        "step's sampled tokens feed the next); a sequence that stops inside a window computes, then drops, the "
        "window's remaining steps. None: 16 with CUDA graphs, else 1. *(our default: the host's per-window work "
        "- appending tokens, stops, new cache blocks - then costs the GPU little; on the H200 RL benchmark a "
        "decode step took 1.40 / 1.32 / 1.28 ms with windows of 8 / 16 / 32)*")
    overlap_windows: bool = Field(
        True, description="Queue a decode batch's next window behind the running one, before the host has read the "
        "running one's tokens, so the device does not wait on the host between windows (windows of 2 steps and "
        "more; not while sequences wait to be admitted). Tokens are those of single steps either way. *(our "
        "default: SGLang's overlap scheduling does the same for single steps)*")
    ignore_eos: bool = Field(False, description="Never stop at a stop token (benchmarks: every sequence runs to "
                                                "max_new_tokens). *(our default)*")
