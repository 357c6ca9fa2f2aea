"""Supervised fine-tuning on reasoning traces (SPEC 2.1): response-only loss, packing, warm-up + cosine."""

from vibethinker.sft.config import SFTConfig
from vibethinker.sft.trainer import train_sft

__all__ = ["SFTConfig", "train_sft"]
