"""A cheap identity of a checkpoint folder, the key of every sample cache (eval, probing, filtering, harvest)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def model_fingerprint(model_dir: str | os.PathLike, head_bytes: int = 4 << 20) -> str:
    """The checkpoint's config plus, per weight file, the size and a hash of the first bytes.

    Hashing whole multi-GB files on every phase start would be slow; training changes every tensor, so the head of
    each shard differs between checkpoints.
    """
    model_dir = Path(model_dir)
    digest = hashlib.sha256((model_dir / "config.json").read_bytes())
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not weights:
        raise FileNotFoundError(f"{model_dir}: no *.safetensors or *.bin weights to fingerprint")
    for path in weights:
        with path.open("rb") as handle:
            digest.update(f"{path.name}:{path.stat().st_size}".encode())
            digest.update(handle.read(head_bytes))
    return digest.hexdigest()[:24]
