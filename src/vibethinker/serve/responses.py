"""OpenAI response objects (chat completions, completions, their stream chunks, usage, log-probs, errors) as dicts."""

from __future__ import annotations

import time
import uuid

from transformers import PreTrainedTokenizerBase


class APIError(Exception):
    """An error the client gets in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error",
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def usage(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int, cached_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}}


class LogprobFormatter:
    """Token log-probs in the chat format (``content: [{token, logprob, bytes, top_logprobs}]``) or the legacy
    completions one (``tokens``, ``token_logprobs``, ``top_logprobs``, ``text_offset``)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.tokenizer = tokenizer

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    def chat(self, tokens: list[tuple[int, float, list | None]], top: int) -> dict:
        content = []
        for token_id, logprob, alternatives in tokens:
            text = self.token_text(token_id)
            content.append({"token": text, "logprob": logprob, "bytes": list(text.encode()),
                            "top_logprobs": [{"token": (t := self.token_text(i)), "logprob": lp,
                                              "bytes": list(t.encode())} for i, lp in (alternatives or [])[:top]]})
        return {"content": content}

    def completion(self, tokens: list[tuple[int, float, list | None]], top: int, offset: int) -> dict:
        out = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for token_id, logprob, alternatives in tokens:
            text = self.token_text(token_id)
            out["tokens"].append(text)
            out["token_logprobs"].append(logprob)
            out["top_logprobs"].append({self.token_text(i): lp for i, lp in (alternatives or [])[:top]})
            out["text_offset"].append(offset)
            offset += len(text)
        return out
