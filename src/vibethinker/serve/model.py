"""The served model: checkpoint, tokenizer, chat template and the online engine, plus the async side of a request.

``ServedModel.stream`` turns one request into an async iterator of :class:`SampleOutput` (the engine thread hands
them to the event loop); leaving the iterator early (a client gone) cancels what is left of the request.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from vibethinker.generate.native import EngineConfig, NativeGenerator
from vibethinker.generate.native.online import OnlineEngine, OnlineRequest, SampleOutput
from vibethinker.generate.types import SamplingParams
from vibethinker.serve.protocol import ChatMessage
from vibethinker.serve.reasoning import THINK_CLOSE
from vibethinker.serve.responses import APIError


class ServedModel:
    def __init__(self, path: str | os.PathLike, name: str | None = None, engine_config: EngineConfig | None = None,
                 max_waiting: int = 1024):
        self.path = Path(path)
        if not (self.path / "config.json").exists():
            raise FileNotFoundError(f"{self.path}: not a checkpoint folder (no config.json)")
        self.name = name or self.path.name
        self.generator = NativeGenerator(self.path, config=engine_config)
        self.tokenizer = self.generator.tokenizer
        self.engine = OnlineEngine(self.generator.engine, max_waiting=max_waiting)
        self.max_model_len = self.generator.engine.max_model_len
        self.eos_ids = self.generator.stop_ids(SamplingParams())
        self.think_end_ids = tuple(self.tokenizer(THINK_CLOSE, add_special_tokens=False)["input_ids"])
        self.created = int(time.time())

    def render_chat(self, messages: list[ChatMessage], add_generation_prompt: bool = True) -> str:
        if self.tokenizer.chat_template is None:
            raise APIError(400, f"model {self.name!r} has no chat template: use /v1/completions", "messages")
        turns = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in messages]
        return self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=add_generation_prompt)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def check_model(self, requested: str | None) -> None:
        if requested is not None and requested != self.name:
            raise APIError(404, f"the model {requested!r} does not exist; this server serves {self.name!r}",
                           "model", code="model_not_found")

    async def stream(self, request_id: str, prompt_ids: list[int], sampling: SamplingParams, stop_ids: list[int],
                     thinking_budget: int | None, top_logprobs: int) -> AsyncIterator[SampleOutput]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[SampleOutput] = asyncio.Queue()

        def deliver(out: SampleOutput) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, out)

        self.engine.submit(OnlineRequest(request_id, prompt_ids, sampling, stop_ids, deliver, thinking_budget,
                                         self.think_end_ids, top_logprobs))
        remaining = sampling.n
        try:
            while remaining:
                out = await queue.get()
                if out.finish_reason is not None:
                    remaining -= 1
                yield out
        finally:
            if remaining:
                self.engine.cancel(request_id)
