"""Tokenizer training, the tiny Qwen2 model factory, and loading/saving of HF checkpoints."""

from vibethinker.utils.lazy import lazy_exports

_EXPORTS = {
    "TinyModelConfig": "vibethinker.model.config",
    "build_tiny_model": "vibethinker.model.tiny",
    "load_model": "vibethinker.model.checkpoint",
    "load_tokenizer": "vibethinker.model.checkpoint",
    "save_pretrained_atomic": "vibethinker.model.checkpoint",
    "train_tokenizer": "vibethinker.model.tokenizer",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
