"""Judge clients for the rubric rewards of instruct RL (SPEC 2.5, 2.7).

One interface: ``Judge.grade(prompts) -> list[str]`` takes finished judge prompts (one user turn each) and returns
the judge model's raw reply for each, in order. Reading the score out of the reply is the reward's job
(:mod:`vibethinker.rl.instruct_reward`), so a judge knows nothing about rubrics.

- :class:`LocalHFJudge`: a local HF checkpoint through :func:`vibethinker.generate.make_generator`, each prompt
  wrapped in the judge's own chat template, greedy by default (the same reply for the same prompt).
- :class:`OpenAICompatibleJudge`: ``POST {base_url}/chat/completions`` with the standard OpenAI body (OpenAI, vLLM,
  SGLang and llama.cpp servers speak it), standard library only. HTTP 429 / 5xx and connection failures are retried
  with exponential backoff ``backoff_s * 2**attempt`` (capped at ``max_backoff_s``; a numeric ``Retry-After`` wins);
  other statuses fail at once. Every error names the URL and the HTTP status.

:class:`JudgeConfig` + :func:`make_judge` build either from a recipe.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, runtime_checkable

from vibethinker.generate import SamplingParams, make_generator
from vibethinker.rl.config import JudgeConfig


@runtime_checkable
class Judge(Protocol):
    """A judge model: raw reply text for each prompt, in order."""

    def grade(self, prompts: list[str]) -> list[str]:
        ...


class JudgeError(RuntimeError):
    """The judge service could not answer; the message names the URL and the HTTP status."""


class LocalHFJudge:
    """A local HF checkpoint as the judge. ``temperature == 0`` is greedy.

    Calls are serialised with a lock: the RL loop scores groups from several threads, and one model on one device
    gains nothing from concurrent ``generate`` calls.
    """

    def __init__(self, model_path: str | os.PathLike, max_new_tokens: int = 1024, temperature: float = 0.0,
                 batch_size: int = 16, device: str | None = None, seed: int = 0):
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed
        self.generator = make_generator(str(model_path), batch_size=batch_size, device=device)
        self._lock = threading.Lock()
        SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens)  # fail now on bad settings

    def render(self, prompt: str) -> str:
        """The judge prompt as a user turn of the judge's chat template, up to the assistant header."""
        return self.generator.tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                            add_generation_prompt=True, tokenize=False)

    def grade(self, prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        sampling = SamplingParams(n=1, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                                  seed=self.seed)
        rendered = [self.render(p) for p in prompts]
        with self._lock:
            completions = self.generator.generate(rendered, sampling)
        return [c.text for c in completions]


RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class OpenAICompatibleJudge:
    """A chat-completions server as the judge; ``concurrency`` requests in flight per :meth:`grade` call.

    ``api_key_env`` names the environment variable holding the key (sent as ``Authorization: Bearer``); ``None``
    for a server without authentication (a local vLLM). ``max_tokens=None`` leaves the length to the server.
    """

    def __init__(self, base_url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY", timeout: float = 120.0,
                 max_retries: int = 5, concurrency: int = 8, temperature: float = 0.0, max_tokens: int | None = 1024,
                 backoff_s: float = 1.0, max_backoff_s: float = 60.0):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"judge base_url must start with http:// or https://, got {base_url!r}")
        if concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError(f"judge needs concurrency >= 1, max_retries >= 0 and timeout > 0; got concurrency="
                             f"{concurrency}, max_retries={max_retries}, timeout={timeout}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.max_retries, self.concurrency = model, timeout, max_retries, concurrency
        self.temperature, self.max_tokens = temperature, max_tokens
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.headers = {"Content-Type": "application/json"}
        if api_key_env is not None:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(f"judge {self.url}: environment variable {api_key_env} is not set; set it, or pass "
                                 f"api_key_env=None for a server without authentication")
            self.headers["Authorization"] = f"Bearer {key}"

    def body(self, prompt: str) -> dict:
        body = {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": self.temperature}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    def grade(self, prompts: list[str]) -> list[str]:
        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(self.complete, prompts))

    def complete(self, prompt: str) -> str:
        """One chat completion, retried on 429 / 5xx / connection failures."""
        payload = json.dumps(self.body(prompt)).encode("utf-8")
        failure = ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.url, data=payload, headers=self.headers, method="POST")
            retry_after = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return self._content(response.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", "replace")[:500]
                if exc.code not in RETRYABLE_STATUS:
                    raise JudgeError(f"judge POST {self.url} failed with HTTP {exc.code}: {detail}") from None
                failure, retry_after = f"HTTP {exc.code}: {detail}", exc.headers.get("Retry-After")
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                failure = f"no HTTP status ({getattr(exc, 'reason', exc)})"
            if attempt < self.max_retries:
                time.sleep(self._delay(attempt, retry_after))
        raise JudgeError(f"judge POST {self.url} failed after {self.max_retries + 1} attempts, last with {failure}")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(self.max_backoff_s, max(0.0, float(retry_after)))
            except ValueError:  # an HTTP date: fall back to our own schedule
                pass
        return min(self.max_backoff_s, self.backoff_s * 2 ** attempt)

    def _content(self, raw: bytes) -> str:
        try:
            reply = json.loads(raw)
            content = reply["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeError(f"judge POST {self.url}: HTTP 200 but not a chat completion (expected "
                             f"choices[0].message.content): {raw[:300]!r}") from None
        return content or ""  # null content (refusal, empty reply) grades as a missing score


def make_judge(config: JudgeConfig) -> Judge:
    """The judge client described by ``config``."""
    if config.kind == "local_hf":
        return LocalHFJudge(config.model, max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                            batch_size=config.batch_size, device=config.device)
    if not config.base_url:
        raise ValueError("judge kind 'openai' needs base_url (e.g. http://127.0.0.1:8000/v1)")
    return OpenAICompatibleJudge(config.base_url, config.model, api_key_env=config.api_key_env,
                                 timeout=config.timeout_s, max_retries=config.max_retries,
                                 concurrency=config.concurrency, temperature=config.temperature,
                                 max_tokens=config.max_new_tokens)


__all__ = [
    "RETRYABLE_STATUS",
    "Judge",
    "JudgeConfig",
    "JudgeError",
    "LocalHFJudge",
    "OpenAICompatibleJudge",
    "make_judge",
]
