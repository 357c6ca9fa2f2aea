"""Supervised fine-tuning on reasoning traces (SPEC 2.1): response-only loss, packing, warm-up + cosine."""

from vibethinker.utils.lazy import lazy_exports

_EXPORTS = {
    "CurriculumConfig": "vibethinker.sft.config",
    "SFTConfig": "vibethinker.sft.config",
    "train_sft": "vibethinker.sft.trainer",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
