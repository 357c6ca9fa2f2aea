"""Settings of one SFT stage. Defaults follow SPEC 2.1 (VibeThinker-3B stage 1) unless marked otherwise."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vibethinker.model.attention_backend import AttentionChoice
from vibethinker.model.fused_kernels import FusedKernels
from vibethinker.sampling import SamplingOwner, sampling_with_defaults
from vibethinker.utils.fields import resumable


class SFTConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(5e-5, gt=0, description=(
        "Peak learning rate after warm-up. VibeThinker-3B SFT stages 1 and 2 use 5e-5 (SPEC 2.1)."))
    min_learning_rate: float = Field(8e-8, ge=0, description=(
        "Floor of the cosine decay, reached at the last step. 8e-8 in VibeThinker-3B (SPEC 2.1)."))
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description=(
        "Share of the optimiser steps spent in linear warm-up from 0. 5% in VibeThinker-3B (SPEC 2.1)."))
    epochs: float = Field(5, gt=0, description=(
        "Passes over the training samples. 5 for stage 1, 2 for stage 2 in VibeThinker-3B (SPEC 2.1). A fraction "
        "stops part-way through the last epoch."))
    max_steps: int | None = Field(None, gt=0, description=(
        "Stop after this many optimiser steps (overrides epochs for the schedule length) -- for smoke runs."))
    seq_len: int = Field(4096, gt=8, description=(
        "Length of one packed row in tokens. Samples longer than this are dropped and counted in the stage report "
        "(a truncated trace would teach the model to stop mid-thought)."))
    rows_per_micro_batch: int = Field(1, gt=0, description=(
        "Rows per forward/backward pass: packed rows of seq_len tokens, or samples when packing is off."))
    grad_accum_steps: int = Field(1, gt=0, description=(
        "Micro-batches per optimiser step. Global batch = rows_per_micro_batch * grad_accum_steps packed rows; the "
        "loss is the token mean over the whole global batch, so accumulation gives the one-big-batch gradient."))
    packing: bool = Field(True, description=(
        "Pack several samples per row (SPEC 2.1 stage 1). Packed samples never attend to each other and restart "
        "their positions at 0. False puts one sample per row, grouped by length and right-padded to the longest in "
        "the micro-batch: no attention mask is needed then, which is faster on CPU for short samples."))
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (unstated in the reports; our default 0).")
    adam_betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas (our default).")
    max_grad_norm: float = Field(1.0, gt=0, description="Clip the global gradient norm to this value.")
    traces_per_problem: int | None = Field(None, gt=0, description=(
        "Use at most this many reference traces per problem (None = all: the multi-path 'spectrum' of SPEC 2.1)."))
    save_every: int = resumable(0, ge=0, description=(
        "Write a checkpoint every k optimiser steps (0 = only the final model). Diversity probing (SPEC 2.2) scores "
        "these checkpoints, so all are kept; only the newest keeps optimiser state for resuming."))
    log_every: int = resumable(1, gt=0, description="Write metrics every k optimiser steps.")
    seed: int = Field(0, description="Seed of data order and initialisation of the run.")
    device: str | None = resumable(None, description="'cpu', 'cuda' or None for the GPU when there is one.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory on long traces.")
    checkpointed_layers: int | None = Field(None, ge=0, description=(
        "How many decoder layers recompute (the last ones; setting it turns gradient_checkpointing on); the "
        "others keep their activations, spending memory left over on less recomputation (selective checkpointing, "
        "model/checkpointing.py). None = every layer. *(our default)*"))
    torch_compile: bool = resumable(False, description=(
        "Compile each decoder layer with torch.compile (one graph serves every layer; shapes that change get "
        "dynamic ones): fuses the norms, rotary and SwiGLU elementwise work of the training forward and backward. "
        "Costs compilation once (about a minute for a 3B model). *(our default: off, as TRL's torch_compile)*"))
    fused_kernels: FusedKernels = resumable("auto", description=(
        "Liger-Kernel's fused RMSNorm, RoPE and SwiGLU kernels in the training forward and backward "
        "(model/fused_kernels.py): 'auto' on CUDA when liger-kernel is installed, 'liger' required, 'off'. "
        "*(our default)*"))
    attention: AttentionChoice = resumable("auto", description=(
        "Attention kernel of the training forward: 'auto' runs packed rows on CUDA through a varlen kernel "
        "(flash-attn's when installed, else FlexAttention's block-sparse document mask): causal cost and no "
        "materialised T x T mask; 'sdpa' elsewhere (model/attention_backend.py). The values are those of "
        "transformers' attn_implementation. *(our default)*"))


DifficultySampling = sampling_with_defaults(
    "DifficultySampling", "Sampling of the curriculum's reference rollouts: the evaluation protocol's (SPEC 3) "
    "*(our default; the reports do not state it for this filter)*.",
    temperature=(1.0, "Sampling temperature of the reference rollouts (SPEC 3's 1.0).", {"gt": 0}),
    max_new_tokens=(4096, "Length limit of a reference rollout; a rollout cut here counts as an error *(our default; "
                          "set it to the reference's context window for real models)*."),
    n=(8, "Rollouts per problem from the reference model, also written flat as difficulty_rollouts. SPEC 2.1 (3B "
          "SFT stage 2): 8.", {"ge": 2}),
    seed=(0, "Seed of the reference rollouts *(our default)*."),
)


class CurriculumConfig(SamplingOwner):
    """Curriculum filters of SFT stage 2 (SPEC 2.1, 3B): long traces only, then hard problems only."""

    model_config = ConfigDict(extra="forbid")
    sampling_aliases = {"difficulty_rollouts": "n"}

    min_trace_tokens: int = Field(5000, ge=0, description=(
        "Keep only reference traces of at least this many response tokens; problems left without a trace are "
        "dropped. SPEC 2.1 (3B SFT stage 2): 'at least 5K tokens'. 0 switches the filter off (tiny recipes)."))
    difficulty_reference: str | None = Field(None, description=(
        "Checkpoint folder of the reference model that rates difficulty (SPEC 2.1 stage 2 samples 'with a reference "
        "model' without naming it; the stage-1 SFT model is the natural choice). None switches the filter off."))
    sampling: DifficultySampling = Field(default_factory=DifficultySampling, description=(
        "Sampling of the reference rollouts; n is the number of rollouts per problem (difficulty_rollouts)."))
    min_error_rate: float = Field(0.75, ge=0, le=1, description=(
        "Keep a problem when the reference's error rate over its rollouts is at least this. SPEC 2.1 (3B SFT stage "
        "2): problems with an error rate below 0.75 are dropped."))
    require_think: bool = Field(True, description=(
        "Grade only the answer after </think> (SPEC 2.5); false for a reference that answers without a thinking "
        "block, which would otherwise get every rollout wrong and keep every problem as hard."))
    batch_size: int = resumable(64, ge=1, description="Sequences per generation batch *(our default)*.")
    chunk_problems: int = resumable(256, ge=1, description=(
        "Problems sampled between two cache writes, so an interrupted run keeps its progress *(our default)*."))
    device: str | None = resumable(None, description="'cpu', 'cuda' or None for the GPU when there is one.")
