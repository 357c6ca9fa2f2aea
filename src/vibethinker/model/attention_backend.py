"""Which attention kernel a training forward runs, chosen from the batch layout and the device.

Packed SFT rows hold several samples whose positions restart at 0. With ``sdpa`` transformers turns the resets into a
materialised ``[rows, 1, T, T]`` block-diagonal mask (4 GiB of bools at 64K tokens), and SDPA then leaves its flash
kernel for one that reads the whole ``T x T`` mask. The varlen kernels read the document boundaries instead:

* ``flash_attention_2`` (when the ``flash_attn`` package is installed): transformers reads the position resets as
  ``cu_seqlens`` and runs flash-attn's varlen kernel, causal within each document;
* ``flex_attention`` (PyTorch's FlexAttention, always there on CUDA): a block-sparse mask built from the same
  document ids, so blocks across documents and above the diagonal are skipped, causal cost, no ``T x T`` tensor.

``auto`` picks flash-attn, else FlexAttention, for packed rows on CUDA, and keeps ``sdpa`` on CPU (tiny models: the
dense mask is small there and FlexAttention would compile for seconds) and for unpacked rows (right padding needs
no mask, so SDPA runs its fused causal kernel).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # settings import AttentionChoice: keep this module free of torch at import
    import torch

AttentionChoice = Literal["auto", "sdpa", "flex_attention", "flash_attention_2"]


def attention_backend(requested: AttentionChoice, packed: bool, device: torch.device) -> str:
    if requested != "auto":
        return requested
    if not packed or device.type != "cuda":
        return "sdpa"
    return "flash_attention_2" if importlib.util.find_spec("flash_attn") else "flex_attention"


def use_attention_backend(model: torch.nn.Module, requested: AttentionChoice, packed: bool) -> str:
    """Switch ``model`` (a transformers model) to the chosen kernel; returns its name."""
    device = next(model.parameters()).device
    name = attention_backend(requested, packed, device)
    if getattr(model.config, "_attn_implementation", None) != name:
        model.set_attn_implementation(name)
    return name


def compile_decoder_layers(model: torch.nn.Module) -> None:
    """``torch.compile`` each decoder layer in place (the layers share code, so one compiled graph serves all);
    gradient checkpointing still wraps each layer's call."""
    for layer in model.get_decoder().layers:
        layer.compile()
