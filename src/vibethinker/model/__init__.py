"""Tokenizer training, the tiny Qwen2 model factory, and loading/saving of HF checkpoints."""

from vibethinker.model.checkpoint import load_model, load_tokenizer, save_pretrained_atomic
from vibethinker.model.tiny import TinyModelConfig, build_tiny_model
from vibethinker.model.tokenizer import train_tokenizer

__all__ = [
    "TinyModelConfig", "build_tiny_model", "load_model", "load_tokenizer", "save_pretrained_atomic", "train_tokenizer",
]
