"""Size of the from-scratch tiny model (a leaf module: recipes validate it without torch)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TinyModelConfig(BaseModel):
    """Size of the from-scratch Qwen2; defaults give about 1.3M parameters at a 1k vocabulary *(our defaults)*."""

    model_config = ConfigDict(extra="forbid")

    hidden_size: int = Field(160, gt=0, description="Width of the residual stream.")
    intermediate_size: int = Field(448, gt=0, description="Width of the SwiGLU feed-forward layer.")
    num_hidden_layers: int = Field(4, gt=0, description="Transformer blocks.")
    num_attention_heads: int = Field(4, gt=0, description="Query heads.")
    num_key_value_heads: int = Field(2, gt=0, description="Key/value heads (grouped-query attention).")
    max_position_embeddings: int = Field(1024, gt=0, description="Longest sequence the RoPE table covers.")
    rope_theta: float = Field(10000.0, gt=0, description="RoPE base frequency.")
    tie_word_embeddings: bool = Field(True, description="Share the input embedding and the output head.")
    initializer_range: float = Field(0.02, gt=0, description="Std of the normal weight initialisation.")
