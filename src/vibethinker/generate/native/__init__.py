"""``native``: a small paged-KV-cache inference engine (continuous batching, CUDA graphs, Triton kernels on GPU).

Layout, by responsibility: :mod:`.engine` (step loop + Generator adapter), :mod:`.scheduler` (who runs next),
:mod:`.kv_cache` (block allocation, prefix sharing), :mod:`.sequence` (one request), :mod:`.model_runner`
(tensors, CUDA graphs), :mod:`.sampler`, :mod:`.weights` (checkpoint / live-model loading), :mod:`.layers`,
:mod:`.models`.
"""

from vibethinker.generate.native.config import EngineConfig
from vibethinker.generate.native.engine import LLMEngine, NativeGenerator

__all__ = ["EngineConfig", "LLMEngine", "NativeGenerator"]
