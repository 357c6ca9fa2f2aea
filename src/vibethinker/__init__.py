"""vibethinker: the VibeThinker post-training recipe for small verifiable-reasoning models."""

__version__ = "0.1.0"
