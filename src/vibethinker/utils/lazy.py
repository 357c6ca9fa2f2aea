"""Package namespaces that import their members on first use.

A feature package re-exports its main names (``from vibethinker.sft import train_sft``), but importing the package
must stay cheap: ``vibethinker.sft.config`` is read by every recipe validation and must not drag in torch through
``vibethinker/sft/__init__.py``. PEP 562 module ``__getattr__`` gives both.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps a public name to the module defining it."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
