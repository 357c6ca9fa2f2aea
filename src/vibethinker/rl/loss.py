"""The token-level clipped policy loss of MGPO/GRPO (SPEC 2.3) with explicit loss aggregation (SPEC 5).

Per response token t of sequence i, with rho_t = exp(logp_t - logp_old_t) and the sequence advantage A'_i:

    l_t = -min(rho_t * A'_i, clip(rho_t, 1 - clip_low, 1 + clip_high) * A'_i)

Aggregation modes (``N_tok`` / ``N_seq`` are the token / sequence counts of the GLOBAL batch, so that micro-batches
that each divide by the global count add up to exactly the one-big-batch loss and gradient):

- ``token-mean``               sum_{i,t} l_t / N_tok                      (DAPO: every token weighs the same)
- ``seq-mean-token-mean``      sum_i (sum_t l_t / |y_i|) / N_seq          (GRPO and SPEC 2.3's J: 1/|y_i| per sequence)
- ``seq-mean-token-sum-norm``  sum_i (sum_t l_t / L_max) / N_seq          (Dr. GRPO: a constant L_max, no length bias)

An optional KL penalty to a frozen reference (off by default, SPEC 2.3) is added as a loss term with the same
aggregation, using one of the estimators of r = logp_ref - logp (Schulman, "Approximating KL divergence"):
``k1 = -r``, ``k2 = r^2 / 2``, ``k3 = exp(r) - r - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vibethinker.rl.config import Aggregation, KLEstimator

AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")


@dataclass
class PolicyLossOutput:
    loss: torch.Tensor  # scalar: this micro-batch's share of the global-batch loss
    policy_loss: float
    kl: float  # mean KL estimate per response token (0 when no reference)
    clip_fraction: float  # share of response tokens whose ratio was clipped in the active direction
    ratio_mean: float


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: Aggregation, global_tokens: float,
              global_sequences: float, max_response_tokens: int | None = None) -> torch.Tensor:
    """Reduce per-token ``values`` [B, T] over the response ``mask`` [B, T] with one of :data:`AGGREGATIONS`."""
    masked = values * mask
    if mode == "token-mean":
        return masked.sum() / global_tokens
    if mode == "seq-mean-token-mean":
        return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1)).sum() / global_sequences
    if mode == "seq-mean-token-sum-norm":
        if not max_response_tokens:
            raise ValueError("seq-mean-token-sum-norm needs max_response_tokens (the constant L_max)")
        return (masked.sum(dim=1) / max_response_tokens).sum() / global_sequences
    raise ValueError(f"unknown loss aggregation {mode!r}; choose one of {', '.join(AGGREGATIONS)}")


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: KLEstimator) -> torch.Tensor:
    log_ratio = ref_logprobs - logprobs
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio.pow(2)
    if estimator == "k3":
        return torch.exp(log_ratio) - log_ratio - 1
    raise ValueError(f"unknown KL estimator {estimator!r}; choose k1, k2 or k3")


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                *, clip_low: float = 0.2, clip_high: float = 0.28, aggregation: Aggregation = "seq-mean-token-mean",
                global_tokens: float | None = None, global_sequences: float | None = None,
                max_response_tokens: int | None = None, ref_logprobs: torch.Tensor | None = None,
                kl_coef: float = 0.0, kl_estimator: KLEstimator = "k3") -> PolicyLossOutput:
    """Clipped surrogate over response tokens. Shapes: log-probs and mask [B, T], advantages [B].

    ``global_tokens`` / ``global_sequences`` default to this micro-batch's own counts (one micro-batch = the batch).
    """
    mask = mask.to(logprobs.dtype)
    global_tokens = float(mask.sum()) if global_tokens is None else global_tokens
    global_sequences = float(mask.shape[0]) if global_sequences is None else global_sequences
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages.to(logprobs.dtype).unsqueeze(1)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    loss = aggregate(per_token, mask, aggregation, global_tokens, global_sequences, max_response_tokens)
    policy_value = float(loss.detach())
    kl_value = 0.0
    if ref_logprobs is not None and kl_coef > 0:
        kl = kl_penalty(logprobs, ref_logprobs, kl_estimator)
        loss = loss + kl_coef * aggregate(kl, mask, aggregation, global_tokens, global_sequences,
                                          max_response_tokens)
        kl_value = float((kl.detach() * mask).sum() / mask.sum().clamp(min=1))
    n_tokens = mask.sum().clamp(min=1)
    clip_fraction = float(((clipped < unclipped).to(mask.dtype) * mask).sum() / n_tokens)
    ratio_mean = float((ratio.detach() * mask).sum() / n_tokens)
    return PolicyLossOutput(loss, policy_value, kl_value, clip_fraction, ratio_mean)
