"""The requests the server takes, as pydantic models of OpenAI's chat and completions APIs (and our extensions).

Fields follow OpenAI's API reference; ``top_k`` and ``thinking_token_budget`` are the extensions vLLM also takes,
``vibethinker`` our verified best-of-n. Unknown fields are refused (400, naming the field) rather than ignored:
a client that sends ``best_of`` or ``tools`` learns at once that this server does not do it. OpenAI fields that
only have a meaning we do not implement are accepted at their neutral value only (``frequency_penalty`` 0, ...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamOptions(Strict):
    include_usage: bool = False
    continuous_usage_stats: bool = False


class TextPart(Strict):
    type: Literal["text"]
    text: str


class ChatMessage(Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None
    reasoning_content: str | None = None  # a previous assistant turn's reasoning, dropped as templates do

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)


class BestOfN(Strict):
    """Verified best-of-n: sample ``k``, cluster the final answers with the verifier's equivalence, return one
    of the chosen cluster (SPEC 4)."""

    select: Literal["majority", "clr"] = Field("majority", description=(
        "'majority': the largest cluster (self-consistency, Wang et al. 2023); 'clr': the cluster with the best "
        "claim-level reliability (SPEC 4, tool-checked claims)."))
    k: int = Field(8, ge=1, le=64, description="Samples drawn (one prefill: they share the prompt's cache).")
    domain: Literal["math", "exact"] = Field("math", description=(
        "Equivalence of answers: 'math' (math-verify with our policies) or 'exact' (normalised strings)."))


class SamplingFields(Strict):
    model: str
    n: int = Field(1, ge=1, le=64)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0: no top-k cut (vLLM's extension; -1 also means off)")
    seed: int | None = None
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    thinking_token_budget: int | None = Field(None, ge=0, description=(
        "Tokens of reasoning before the server inserts </think> and lets the answer be written."))
    vibethinker: BestOfN | None = None
    user: str | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    ignore_eos: bool = False

    @model_validator(mode="before")
    @classmethod
    def _top_k_off(cls, data):
        if isinstance(data, dict) and data.get("top_k") == -1:
            data = {**data, "top_k": 0}
        return data

    @model_validator(mode="after")
    def _check(self):
        if self.frequency_penalty or self.presence_penalty:
            raise ValueError("frequency_penalty / presence_penalty are not supported (only 0)")
        if self.stream and self.vibethinker is not None:
            raise ValueError("vibethinker: best-of-n selection returns one chosen answer; stream must be false")
        if self.vibethinker is not None and self.n != 1:
            raise ValueError("n: with vibethinker best-of-n set k (samples drawn); n must be 1")
        return self

    def stop_strings(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)

    @model_validator(mode="after")
    def _check_chat(self):
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs: needs logprobs true")
        return self

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    def n_top(self) -> int:
        return (self.top_logprobs or 0) if self.logprobs else 0


class CompletionRequest(SamplingFields):
    prompt: str | list[int] | list[str]
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False

    @model_validator(mode="after")
    def _check_completion(self):
        if self.echo:
            raise ValueError("echo is not supported")
        if isinstance(self.prompt, list) and self.prompt and isinstance(self.prompt[0], str) and len(self.prompt) != 1:
            raise ValueError("prompt: one prompt per request (a list of several strings is not supported)")
        return self

    def token_limit(self) -> int | None:
        return self.max_tokens

    def n_top(self) -> int:
        return self.logprobs or 0


class TokenizeRequest(Strict):
    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_generation_prompt: bool = True

    @model_validator(mode="after")
    def _one(self):
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of prompt or messages")
        return self


class DetokenizeRequest(Strict):
    model: str | None = None
    tokens: list[int]
