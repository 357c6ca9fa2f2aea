"""Gradient checkpointing of every decoder layer, or of only some (selective activation checkpointing).

Checkpointing a layer keeps only its input and recomputes its activations in the backward: one more forward of
that layer (about a third more compute) for the activation memory of one layer. Memory left over after the
weights, gradients and optimiser state can buy that compute back: with ``checkpointed_layers = k`` only the last
``k`` decoder layers recompute and the first ``L - k`` keep their activations (torchtitan's and Megatron's
"selective" checkpointing by layer). ``None`` checkpoints every layer.

The first layers keep their activations because their backward runs last: freeing the recomputed layers' memory
first lowers the peak no less than any other choice of the same count.
"""

from __future__ import annotations

import torch


def enable_gradient_checkpointing(model: torch.nn.Module, checkpointed_layers: int | None = None) -> int:
    """Turn on checkpointing (non-reentrant, so it composes with torch.compile and frozen inputs) for the last
    ``checkpointed_layers`` decoder layers, or all of them; returns how many layers recompute."""
    layers = model.get_decoder().layers
    if checkpointed_layers is not None and not 0 <= checkpointed_layers <= len(layers):
        raise ValueError(f"checkpointed_layers: {checkpointed_layers} is not between 0 and the model's "
                         f"{len(layers)} decoder layers")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    kept = 0 if checkpointed_layers is None else len(layers) - checkpointed_layers
    for index, layer in enumerate(layers):
        layer.gradient_checkpointing = index >= kept
    return len(layers) - kept
