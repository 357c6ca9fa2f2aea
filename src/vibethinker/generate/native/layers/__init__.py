"""Building blocks of the engine's models, one per file: linear (with fused shards), rotary, RMSNorm, attention."""
