"""Process-wide torch settings: thread counts, determinism, quiet library output."""

from __future__ import annotations

import os


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
