"""Host-to-device copies that do not wait for the device.

A plain ``torch.tensor(data, device="cuda")`` (or ``.to("cuda")`` of a pageable tensor) synchronises the stream: the
host waits until every queued kernel has run. That is harmless between a decode window and the host's reading of
it, but a follow-on window queued while another runs (``EngineConfig.overlap_windows``) would lose its overlap. The
data go through pinned memory with ``non_blocking=True`` instead; the copy is ordered after the queued kernels on
the stream, and the caching host allocator keeps the pinned buffer until the copy has run.
"""

from __future__ import annotations

import torch


def to_device(data: torch.Tensor | list, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``data`` (a host tensor or nested lists) on ``device``, without a stream synchronisation on CUDA."""
    host = data if isinstance(data, torch.Tensor) else torch.tensor(data, dtype=dtype)
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)
