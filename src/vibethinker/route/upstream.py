"""The large model behind the router: an OpenAI-compatible chat-completions server, called with retries.

Connection errors, time-outs, 429 and 5xx answers are retried (``retries`` more attempts, exponential back-off
from ``backoff_s``); a 4xx other than 429 is the request's fault and is not. When every attempt fails the router
answers 502 (or 504 after a time-out) naming the upstream and the last error; it never substitutes a local answer
for an upstream one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from vibethinker.serve.responses import APIError


@dataclass
class UpstreamConfig:
    url: str  # base URL, e.g. http://host:8001/v1
    model: str
    timeout_s: float = 120.0
    retries: int = 2
    backoff_s: float = 0.5
    api_key: str | None = None


class Upstream:
    def __init__(self, config: UpstreamConfig):
        self.config = config
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.client = httpx.AsyncClient(base_url=config.url.rstrip("/"), timeout=config.timeout_s, headers=headers)

    async def chat(self, body: dict) -> dict:
        payload = dict(body, model=self.config.model, stream=False)
        last, timed_out = "", False
        for attempt in range(self.config.retries + 1):
            if attempt:
                await asyncio.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                response = await self.client.post("/chat/completions", json=payload)
            except httpx.TimeoutException as error:
                last, timed_out = f"timed out after {self.config.timeout_s:g} s ({type(error).__name__})", True
                continue
            except httpx.HTTPError as error:
                last, timed_out = f"{type(error).__name__}: {error}", False
                continue
            if response.status_code == 200:
                return response.json()
            last, timed_out = f"HTTP {response.status_code}: {response.text[:300]}", False
            if response.status_code != 429 and response.status_code < 500:
                break
        status = 504 if timed_out else 502
        raise APIError(status, f"upstream {self.config.url} (model {self.config.model!r}) failed after "
                               f"{attempt + 1} attempt(s): {last}", kind="upstream_error")

    async def close(self) -> None:
        await self.client.aclose()
