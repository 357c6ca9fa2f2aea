"""The stage registry: one module per stage kind, found by module discovery.

``data -> init_model / import_gguf -> sft -> probe_fuse -> rl -> distill -> eval``, and ``export_gguf``. Each module defines ``KIND``
(a :class:`~vibethinker.stages.base.StageKind`: settings model, ``run``, artefacts, report hooks); the recipe schema,
the pipeline and the reports are built from this registry, so adding a stage kind is adding one module here.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from vibethinker.stages.base import StageKind

_NOT_KINDS = {"base"}


@lru_cache(maxsize=1)
def stage_kinds() -> dict[str, StageKind]:
    """Every stage kind by its ``kind`` tag."""
    kinds: dict[str, StageKind] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name in _NOT_KINDS or module.name.startswith("_"):
            continue
        kind = importlib.import_module(f"{__name__}.{module.name}").KIND
        if kind.name in kinds:
            raise RuntimeError(f"stage kind {kind.name!r} is defined twice (stages/{module.name}.py)")
        kinds[kind.name] = kind
    return kinds


def stage_kind(name: str) -> StageKind:
    kinds = stage_kinds()
    if name not in kinds:
        raise KeyError(f"unknown stage kind {name!r} (known: {', '.join(kinds)})")
    return kinds[name]


__all__ = ["StageKind", "stage_kind", "stage_kinds"]
