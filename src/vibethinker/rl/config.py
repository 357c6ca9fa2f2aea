"""Settings of one strictly on-policy MGPO RL phase. Defaults follow SPEC 2.3 unless marked *(our default)*."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vibethinker.model.fused_kernels import FusedKernels
from vibethinker.sampling import SamplingOwner, sampling_with_defaults
from vibethinker.utils.fields import resumable

# How per-token losses are reduced and which KL estimator is used: defined here (not in ``rl/loss.py``) so that
# validating a recipe does not import torch.
Aggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
KLEstimator = Literal["k1", "k2", "k3"]

RolloutSampling = sampling_with_defaults(
    "RolloutSampling", "Sampling of the RL rollouts (SPEC 2.3): the untruncated distribution at temperature 1.0.",
    temperature=(1.0, "Rollout temperature, 1.0 in training (SPEC 2.3). The trainer's log-probs use the same "
                      "temperature, so the ratio and the rollout/trainer log-prob gap compare the same distribution.",
                 {"gt": 0}),
    top_p=(1.0, "Rollout top-p, 1.0 in training (SPEC 2.3)."),
    max_new_tokens=(16384, "Response length limit (the phase's context window, SPEC 2: 16K/32K for 1.5B, 64K for "
                           "3B). Responses cut here score 0."),
    n=(8, "G: responses sampled per prompt, the group of the group-relative advantage (SPEC 2.3: our default 8, "
          "16 for small models). Also written flat as group_size.", {"ge": 2}),
    seed=(0, "Seed of the prompt order and of the rollouts (step s samples with a seed derived from seed and s)."),
)


class RLConfig(SamplingOwner):
    model_config = ConfigDict(extra="forbid")
    sampling_aliases = {"group_size": "n"}

    sampling: RolloutSampling = Field(default_factory=RolloutSampling, description=(
        "Rollout sampling (SPEC 2.3: temperature 1.0, top-p 1.0); n is the group size G and max_new_tokens the "
        "phase's window. Every field can also be written flat (group_size, temperature, max_new_tokens, seed)."))

    mgpo_lambda: float = Field(2.0, ge=0, description=(
        "lambda of the MGPO weight w(q) = exp(-lambda * D(q)) (SPEC 2.3). 0 is plain GRPO; 2 is our default "
        "(unstated in the reports)."))
    prompts_per_step: int = Field(32, gt=0, description=(
        "Prompts per rollout batch; one rollout batch = prompts_per_step * group_size responses = ONE optimiser step "
        "(strictly on-policy, SPEC 2.3). *(our default)*"))
    learning_rate: float = Field(1e-6, gt=0, description=(
        "Constant AdamW learning rate. 1e-6 for 1.5B-3B models (SPEC 2.3, our default)."))
    clip_low: float = Field(0.2, ge=0, lt=1, description="eps_lo of the clipped ratio, 0.2 (SPEC 2.3).")
    clip_high: float = Field(0.28, ge=0, description="eps_hi of the clipped ratio (clip-higher), 0.28 (SPEC 2.3).")
    loss_aggregation: Aggregation = Field("seq-mean-token-mean", description=(
        "How per-token losses are reduced over the GLOBAL rollout batch (SPEC 5): 'seq-mean-token-mean' is SPEC "
        "2.3's J (1/G sum_i 1/|y_i| sum_t); 'token-mean' (DAPO) and 'seq-mean-token-sum-norm' (Dr. GRPO, with "
        "L_max = max_new_tokens) are the alternatives."))
    kl_coef: float = Field(0.0, ge=0, description=(
        "Weight of a KL penalty to the frozen starting checkpoint, added as a loss term; off by default (SPEC 2.3)."))
    kl_estimator: KLEstimator = Field("k3", description="KL estimator k1/k2/k3 when kl_coef > 0 (SPEC 2.3).")
    max_steps: int | None = Field(None, gt=0, description=(
        "Optimiser steps (= rollout batches) of the phase; None = one pass over the problems."))
    micro_batch_size: int = Field(8, gt=0, description=(
        "Sequences per forward/backward pass. The step's rollouts are accumulated over micro-batches, each "
        "normalised with the global token / sequence counts, so the gradient equals one big batch's (SPEC 5)."))
    micro_batch_tokens: int | None = Field(None, gt=0, description=(
        "Cut the update into passes by a token budget instead of a row count: rows sorted longest first, each "
        "pass as many rows as fit rows x longest <= budget (a longer row goes alone); micro_batch_size is then "
        "ignored. Keeps activation memory flat from 1K to 64K responses (rl/micro_batches.py). *(our default: "
        "off; the 3B recipe sets it)*"))
    gradient_checkpointing: bool = Field(False, description=(
        "Recompute each decoder layer's activations in the backward instead of keeping them: about a third more "
        "compute for activation memory of one layer, what long responses need (SPEC 6). *(our default: off)*"))
    checkpointed_layers: int | None = Field(None, ge=0, description=(
        "How many decoder layers recompute (the last ones; setting it turns gradient_checkpointing on); the "
        "others keep their activations, spending memory left over on less recomputation (selective checkpointing, "
        "model/checkpointing.py). None = every layer. *(our default)*"))
    release_kv_cache: bool = resumable(False, description=(
        "Free the native engine's KV cache (and its CUDA graphs) during the optimiser step and allocate it again "
        "for the next rollout, so the update has the GPU memory the cache held (half the free memory by "
        "default). Costs re-capturing the decode graphs each step (seconds), which long rollouts amortise. "
        "*(our default: off)*"))
    generation_batch_size: int = resumable(256, gt=0, description=(
        "Sequences generated at once: the batch of transformers' generate, or the native engine's concurrent "
        "sequences *(our default)*."))
    generation_backend: Literal["auto", "hf", "native"] = resumable("auto", description=(
        "Rollout engine: 'auto' = the native engine (paged KV cache, CUDA graphs) on a GPU, transformers on CPU; "
        "the trainer's weights are shared with it after every optimiser step, with no disk round trip."))
    torch_compile: bool = resumable(False, description=(
        "Run the trainer's forward/backward through torch.compile, which fuses the norms, rotary and activation "
        "elementwise kernels. Costs compilation: about 50 s for a 0.5B model on an H200, and once the batch width "
        "changes a second one for dynamic widths (about 3 min), after which widths no longer recompile. On "
        "bench/rl_vs_trl.py's step the update took 0.23 s instead of 0.35 s (bench/RESULTS.md). Generation is "
        "unaffected. *(our default: off, as TRL's torch_compile)*"))
    fused_kernels: FusedKernels = resumable("auto", description=(
        "Liger-Kernel's fused RMSNorm / RoPE / SwiGLU Triton kernels in the trainer's forward and backward "
        "(model/fused_kernels.py): 'auto' on CUDA when liger-kernel is installed, 'liger' required, 'off'. The "
        "same values up to rounding; the rollout engine has its own kernels. *(our default: auto)*"))
    max_grad_norm: float = Field(1.0, gt=0, description="Clip the global gradient norm to this value.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas *(our default)*.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay *(our default 0)*.")
    long2short: bool = Field(False, description=(
        "Shape rewards of the correct responses towards brevity before the advantages (SPEC 2.4, the 3B's second "
        "math RL stage); MGPO's p(q) still uses binary correctness."))
    mask_truncated: bool = Field(False, description=(
        "Responses cut at max_new_tokens always score 0; with mask_truncated they are also left out of the loss "
        "(overlong masking) while still counting in their group's reward statistics."))
    require_think: bool = Field(True, description=(
        "The response must contain </think> before the graded answer (SPEC 2.5)."))
    dynamic_sampling: bool = Field(False, description=(
        "Replace groups whose G rewards are all equal (zero advantage) with groups for fresh prompts, DAPO-style "
        "(optional in SPEC 2.3); costs extra rollouts, keeps every trained group informative."))
    dynamic_sampling_max_rounds: int = Field(3, ge=1, description=(
        "Cap on replacement rounds per step; groups still without variance after it stay in the batch."))
    save_every: int = resumable(0, ge=0, description=(
        "Write a checkpoint every k optimiser steps (0 = only the final model); only the newest keeps optimiser "
        "state for resuming."))
    log_every: int = resumable(1, gt=0, description="Write metrics every k optimiser steps.")
    eval_every: int = resumable(0, ge=0, description=(
        "Validate on the held-out problems every k optimiser steps, before the first and after the last too "
        "(verl's test_freq); 0 = off *(our default)*. Logs heldout/pass@1 and pass@n, SPEC 3 sampling."))
    eval_samples: int = resumable(4, ge=1, description=(
        "Samples per held-out problem at each validation (pass@1 = avg@n) *(our default 4)*."))
    device: str | None = resumable(None, description="'cpu', 'cuda' or None for the GPU when there is one.")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description=(
        "Dtype of the trained weights; float32 keeps the rollout/trainer log-prob gap small *(our default)*. "
        "bfloat16 saves 2 bytes a parameter of weights and 2 of gradients (see fp32_optimizer_state)."))
    fp32_optimizer_state: bool = Field(True, description=(
        "With dtype bfloat16: AdamW moments in fp32 and Kahan-compensated bf16 weight updates "
        "(utils/bf16_adamw.py), 14 bytes a parameter instead of 16 for fp32 training, without losing the updates "
        "smaller than a bf16 weight's precision; False keeps torch's AdamW, whose moments are then bf16 too "
        "(12 bytes, small updates round away). No effect with float32 weights. *(our default)*"))

    @model_validator(mode="after")
    def _seeded(self) -> RLConfig:
        if self.sampling.seed is None:
            raise ValueError("sampling.seed: an RL phase needs a seed (its prompt order and rollouts derive from it)")
        return self


class JudgeConfig(BaseModel):
    """Which judge model scores the rubric of instruct RL (SPEC 2.5, 2.7); every default is *(our default)*."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["local_hf", "openai"] = Field("local_hf", description=(
        "'local_hf': a local HF checkpoint; 'openai': an OpenAI-compatible chat-completions server (SPEC 2.5: "
        "'rubric scores from a judge model'; the model is our choice)."))
    model: str = Field(..., description="Checkpoint folder (local_hf) or the served model name (openai).")
    base_url: str | None = Field(None, description="Server URL up to /v1, e.g. http://127.0.0.1:8000/v1 (openai).")
    api_key_env: str | None = Field("OPENAI_API_KEY", description=(
        "Environment variable holding the API key (openai); null for a server without authentication."))
    temperature: float = Field(0.0, ge=0, description="Judge sampling temperature; 0 = greedy *(our default)*.")
    max_new_tokens: int = Field(1024, gt=0, description="Longest judge reply in tokens *(our default)*.")
    batch_size: int = Field(16, gt=0, description="Prompts per generate() batch (local_hf) *(our default)*.")
    device: str | None = Field(None, description="Device of the local judge; None = the GPU when there is one.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout (openai) *(our default)*.")
    max_retries: int = Field(5, ge=0, description="Retries of 429 / 5xx / connection failures (openai).")
    concurrency: int = Field(8, gt=0, description="Requests in flight per group (openai) *(our default)*.")
