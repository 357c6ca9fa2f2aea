"""Settings of one SFT stage. Defaults follow SPEC 2.1 (VibeThinker-3B stage 1) unless marked otherwise."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    save_every: int = Field(0, ge=0, description=(
        "Write a checkpoint every k optimiser steps (0 = only the final model). Diversity probing (SPEC 2.2) scores "
        "these checkpoints, so all are kept; only the newest keeps optimiser state for resuming."))
    log_every: int = Field(1, gt=0, description="Write metrics every k optimiser steps.")
    seed: int = Field(0, description="Seed of data order and initialisation of the run.")
    device: str | None = Field(None, description="'cpu', 'cuda' or None for the GPU when there is one.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory on long traces.")
