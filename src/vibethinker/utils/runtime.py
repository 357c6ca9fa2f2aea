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
def long_lived_objects_frozen(warm_calls: int = 3) -> Iterator[Callable[[], None]]:
    """Yields ``freeze()``: call it after every step of a loop; on its first ``warm_calls`` calls it moves every
    object alive then out of the garbage collector's view (``gc.freeze``), later calls do nothing; leaving the
    block gives them back.

    Why: a full collection walks every tracked object - a loaded transformers / torch.compile process has
    hundreds of thousands - and costs 0.2-0.3 s whenever the rollouts' short-lived lists trigger one; frozen,
    it walks only what the loop allocated since. Reference counting still frees frozen objects. More than one
    call because the warm set grows after the first step: torch.compile's automatic dynamic shapes compile the
    function again at the first new input width (the second step, usually), and those graphs live on.
    """
    calls = 0

    def freeze() -> None:
        nonlocal calls
        if calls < warm_calls:
            gc.collect()
            gc.freeze()
        calls += 1

    try:
        yield freeze
    finally:
        if calls:
            gc.unfreeze()
