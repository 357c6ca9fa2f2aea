"""Fills the engine's model from a checkpoint folder (safetensors) or from a live transformers model.

Both go through :func:`weight_targets`, which takes ``(checkpoint name, tensor)`` pairs: names ending in
``q_proj`` / ``k_proj`` / ``v_proj`` / ``gate_proj`` / ``up_proj`` land in their shard of the fused projection
(:data:`.models.decoder.PACKED`), every other name in the parameter of the same name. Copies are in place and cast
to the engine's dtype and device, so a live model can be re-copied before every generation (after each optimiser
step of RL) without reallocating anything that a CUDA graph captured: a device-to-device copy, no disk round trip.
Every engine parameter must be written, or loading fails naming the missing ones. A live model's copy is planned
once and replayed (:class:`LiveWeightCopy`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from vibethinker.generate.native.models.decoder import PACKED, DecoderLM

_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


@torch.no_grad()
def load_weights(model: DecoderLM, tensors: Iterable[tuple[str, torch.Tensor]], source: str) -> None:
    for target, tensor in weight_targets(model, tensors, source):  # one at a time: checkpoints stream from disk
        target.copy_(tensor)


def weight_targets(model: DecoderLM, tensors: Iterable[tuple[str, torch.Tensor]],
                   source: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(engine tensor, checkpoint tensor)`` for each checkpoint tensor that the engine holds; shapes checked,
    unexpected names refused, and at the end every engine parameter must have had its tensor."""
    params = dict(model.named_parameters())
    loaded: set[str] = set()
    for name, tensor in tensors:
        if name.endswith(_IGNORED_SUFFIXES) or (name == "lm_head.weight" and model.lm_head is None):
            continue  # a tied head: the engine reads the embedding
        module_name, _, kind = name.rpartition(".")
        parent, _, leaf = module_name.rpartition(".")
        if leaf in PACKED:
            fused, shard = PACKED[leaf]
            target = f"{parent}.{fused}"
            try:
                module = model.get_submodule(target)
            except AttributeError:
                raise ValueError(f"{source}: unexpected tensor {name!r} for {model.spec.architecture}") from None
            yield module.shard_rows(kind, shard, tensor.shape), tensor
            loaded.add(f"{target}.{kind}#{shard}")
        elif name in params:
            param = params[name]
            if param.shape != tensor.shape:
                raise ValueError(f"{source}: {name} has shape {tuple(tensor.shape)}, expected {tuple(param.shape)}")
            yield param.data, tensor
            loaded.add(name)
        else:
            raise ValueError(f"{source}: unexpected tensor {name!r} for {model.spec.architecture}")
    missing = sorted(_expected(model) - loaded)
    if missing:
        raise ValueError(f"{source}: missing weights for the native engine: {', '.join(missing[:8])}"
                         + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else ""))


class LiveWeightCopy:
    """Copies a live transformers model's current parameters into the engine before each generation (RL).

    The (engine tensor, parameter) pairs are worked out once and replayed as one multi-tensor copy: an optimiser
    updates parameters in place, so the pairs stay valid; they are worked out again whenever the model's
    parameters are other tensors than last time (e.g. after ``load_state_dict(assign=True)``).
    """

    def __init__(self, engine_model: DecoderLM, hf_model: torch.nn.Module):
        self.engine_model, self.hf_model = engine_model, hf_model
        self.storage: tuple[int, ...] = ()
        self.targets: list[torch.Tensor] = []
        self.sources: list[torch.Tensor] = []

    @torch.no_grad()
    def __call__(self) -> None:
        storage = tuple(p.data_ptr() for p in self.hf_model.parameters())
        if storage != self.storage:
            pairs = list(weight_targets(self.engine_model, live_tensors(self.hf_model), "the live model"))
            self.targets, self.sources = [t for t, _ in pairs], [s for _, s in pairs]
            self.storage = storage
        torch._foreach_copy_(self.targets, self.sources)


def _expected(model: DecoderLM) -> set[str]:
    from vibethinker.generate.native.layers.linear import Linear

    names = set()
    for module_name, module in model.named_modules():
        if isinstance(module, Linear) and len(module.shard_sizes) > 1:
            kinds = ["weight"] + (["bias"] if module.bias is not None else [])
            names |= {f"{module_name}.{kind}#{shard}" for kind in kinds for shard in range(len(module.shard_sizes))}
    fused = {name.rsplit("#", 1)[0].rsplit(".", 1)[0] for name in names}
    names |= {name for name, _ in model.named_parameters() if name.rsplit(".", 1)[0] not in fused}
    return names


def checkpoint_tensors(path: str | Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor of the ``*.safetensors`` files of a HF checkpoint folder, one at a time (CPU)."""
    from safetensors import safe_open

    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{path}: no *.safetensors files (the native engine loads safetensors checkpoints)")
    for file in files:
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            for name in handle.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                yield name, handle.get_tensor(name)


def live_tensors(hf_model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """The current parameters and buffers of a transformers model (no copy)."""
    yield from hf_model.state_dict(keep_vars=False).items()
