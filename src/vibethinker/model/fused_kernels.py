"""Liger's fused Triton kernels (RMSNorm, RoPE, SwiGLU) in a transformers model's training forward and backward.

Eager transformers runs each of these as several elementwise kernels, each a pass over ``tokens x hidden`` (SwiGLU:
``tokens x intermediate``) activations in memory; at 16K tokens a 3B model spends a large share of a step there.
Liger-Kernel (LinkedIn, ``pip install liger-kernel``) patches the model instance with one kernel each, forward and
backward, with the same results up to rounding. The output layer is left to :mod:`.output_layer` (its chunked,
exact log-probs serve SFT, RL and S_LP alike), so Liger's fused cross-entropy is not used.

``auto`` applies them on CUDA when the package is installed and the architecture is one Liger knows; ``liger``
requires them (a clear error otherwise); ``off`` never.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # settings import FusedKernels: keep this module free of torch at import
    import torch

FusedKernels = Literal["auto", "liger", "off"]


def apply_fused_kernels(model: torch.nn.Module, requested: FusedKernels) -> bool:
    """Patch ``model`` with Liger's kernels when ``requested`` asks and they apply; True when they were applied."""
    if requested == "off":
        return False
    on_cuda = next(model.parameters()).device.type == "cuda"
    available = importlib.util.find_spec("liger_kernel") is not None
    model_type = getattr(model.config, "model_type", "")
    if requested == "auto" and not (on_cuda and available):
        return False
    if not available:
        raise ValueError("fused_kernels: 'liger' needs the liger-kernel package (pip install liger-kernel)")
    if not on_cuda:
        raise ValueError("fused_kernels: 'liger' runs on CUDA only; use 'auto' or 'off' on this device")
    import liger_kernel.transformers as liger

    patch = getattr(liger, f"apply_liger_kernel_to_{model_type}", None)
    if patch is None:
        if requested == "liger":
            raise ValueError(f"fused_kernels: liger-kernel has no kernels for model type {model_type!r}")
        return False
    patch(rope=True, rms_norm=True, swiglu=True, cross_entropy=False, fused_linear_cross_entropy=False, model=model)
    return True
