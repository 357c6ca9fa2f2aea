"""The output layer in chunks: token log-probs, NLL and entropy without a ``[tokens, vocab]`` fp32 tensor.

A causal LM's loss usually materialises ``logits = h @ W^T`` for every position (bf16), casts it to fp32 and takes
a log-softmax: 10-14 bytes per token per vocabulary entry, 111 GiB for 64K tokens at Qwen2.5's 151,936 entries,
more than the rest of a 3B model's training state. Here the decoder's last hidden states ``h [N, H]`` go through
the output projection ``chunk_tokens`` rows at a time, each chunk under activation checkpointing: the forward keeps
only the chunk's result (one float per token), the backward recomputes that chunk's logits and frees them before
the next, so the peak is one chunk's ``[chunk, V]`` fp32 working set whatever the sequence length:

    logprob_t = z_t[y_t] / T - logsumexp(z_t / T),   z_t = W h_t (+ b)
    entropy_t = logsumexp(z_t / T) - sum_v softmax(z_t / T)_v * z_t,v / T      (no gradient: a logged statistic)

Values and gradients equal the full-logits computation's (the same operations per row, in the same dtypes; under
bf16 autocast the projection runs in bf16 and the softmax in fp32, as before); the cost is one extra output-layer
forward per chunk in the backward (about 10% of a 3B model's FLOPs at a 152K vocabulary). Positions are selected
before the projection, so prompt tokens without a target cost nothing.

Models whose head is not a plain linear layer over the decoder's output (logit soft-capping, logit scaling) keep
the full-logits path: :func:`supports_chunked_head` says which.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

# Rows per chunk so that one fp32 [chunk, vocab] tensor holds about 2^27 entries (512 MiB); at least 64 rows.
CHUNK_ENTRIES = 1 << 27


def default_chunk_tokens(vocab_size: int) -> int:
    return max(64, CHUNK_ENTRIES // max(1, vocab_size))


def supports_chunked_head(model: torch.nn.Module) -> bool:
    """True when ``model.lm_head(model.model(...))`` is the whole of its logits (Llama, Qwen2, Mistral, ...)."""
    config = getattr(model, "config", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if config is None or not isinstance(head, torch.nn.Linear) or not hasattr(model, "get_decoder"):
        return False
    return not any(getattr(config, name, None) for name in ("final_logit_softcapping", "logit_scale",
                                                             "logits_scaling", "output_multiplier_scale"))


def last_hidden_states(model: torch.nn.Module, input_ids: torch.Tensor,
                       position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """The decoder's final (normed) hidden states ``[B, T, H]``: what the output projection reads."""
    out = model.get_decoder()(input_ids=input_ids, position_ids=position_ids, use_cache=False)
    return out.last_hidden_state


def _chunk_logprobs(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                    inv_temperature: float) -> torch.Tensor:
    scaled = F.linear(hidden, weight, bias).float() * inv_temperature
    return -F.cross_entropy(scaled, targets, reduction="none")


@torch.no_grad()
def _chunk_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                   inv_temperature: float) -> torch.Tensor:
    log_dist = torch.log_softmax(F.linear(hidden, weight, bias).float() * inv_temperature, dim=-1)
    return -(log_dist.exp() * log_dist).sum(-1)


def head_logprobs(hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor, temperature: float = 1.0,
                  chunk_tokens: int | None = None, entropy: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(log p(targets) [N], entropy [N] or None)`` at ``temperature`` for hidden states ``[N, H]``.

    The log-probs carry gradients to ``hidden`` and to the head's parameters; the entropy never does."""
    chunk = chunk_tokens or default_chunk_tokens(head.out_features)
    inv_temperature = 1.0 / temperature
    logprobs, entropies = [], []
    needs_grad = torch.is_grad_enabled() and (hidden.requires_grad or head.weight.requires_grad)
    for start in range(0, hidden.shape[0], chunk):
        rows, rows_targets = hidden[start:start + chunk], targets[start:start + chunk]
        if needs_grad:
            logprobs.append(checkpoint(_chunk_logprobs, rows, head.weight, head.bias, rows_targets, inv_temperature,
                                       use_reentrant=False))
        else:
            logprobs.append(_chunk_logprobs(rows, head.weight, head.bias, rows_targets, inv_temperature))
        if entropy:
            entropies.append(_chunk_entropy(rows, head.weight, head.bias, inv_temperature))
    if not logprobs:
        empty = hidden.new_zeros(0, dtype=torch.float32)
        return empty, (empty if entropy else None)
    return torch.cat(logprobs), (torch.cat(entropies) if entropy else None)


def masked_token_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, targets: torch.Tensor,
                          mask: torch.Tensor, position_ids: torch.Tensor | None = None, temperature: float = 1.0,
                          entropy: bool = False, chunk_tokens: int | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (and entropies) of ``targets [B, T]`` at the positions where ``mask [B, T]`` is True, as flat
    ``[mask.sum()]`` tensors in row-major order; ``targets[b, t]`` is the token predicted at position ``t``.

    With a chunkable head the projection runs in chunks over the selected positions only; otherwise the model's
    own logits are computed and the same positions read (the full-logits path)."""
    if supports_chunked_head(model):
        hidden = last_hidden_states(model, input_ids, position_ids)
        return head_logprobs(hidden[mask], model.get_output_embeddings(), targets[mask], temperature, chunk_tokens,
                             entropy)
    logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False).logits[mask]
    log_dist = torch.log_softmax(logits.float() / temperature, dim=-1)
    logprobs = log_dist.gather(-1, targets[mask].unsqueeze(-1)).squeeze(-1)
    dist = log_dist.detach()
    return logprobs, (-(dist.exp() * dist).sum(-1) if entropy else None)
