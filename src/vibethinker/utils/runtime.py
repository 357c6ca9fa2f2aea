"""Process-wide settings: torch thread counts, quiet library output, the garbage collector in training loops."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def configure_torch_threads(threads: int | None = None) -> int:
    """One intra-op thread per core this process may run on, never more than torch's own default (the physical
    core count): hyper-threads and oversubscription make small-matrix training much slower on small CPUs.

    ``OMP_NUM_THREADS`` wins when set, so tests and users keep control.
    """
    import torch

    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS")
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        threads = int(env) if env and env.isdigit() else max(1, min(available, torch.get_num_threads()))
    torch.set_num_threads(threads)
    return threads


def quiet_transformers() -> None:
    """Silence per-call progress bars and advisory warnings of transformers; our own progress display is enough."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


@contextmanager
def long_lived_objects_frozen() -> Iterator[Callable[[], None]]:
    """Yields ``freeze()``: call it once the loop is warm (model, engine, compiled graphs built) to move every
    object alive then out of the garbage collector's view (``gc.freeze``); leaving the block gives them back.

    Why: a full collection walks every tracked object - a loaded transformers / torch.compile process has
    hundreds of thousands - and costs 0.2-0.3 s whenever the rollouts' short-lived lists trigger one; frozen,
    it walks only what the loop allocated since. Reference counting still frees frozen objects.
    """
    frozen = False

    def freeze() -> None:
        nonlocal frozen
        if not frozen:
            gc.collect()
            gc.freeze()
            frozen = True

    try:
        yield freeze
    finally:
        if frozen:
            gc.unfreeze()
