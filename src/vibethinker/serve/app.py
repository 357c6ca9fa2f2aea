"""``vibethinker serve``: an OpenAI-compatible HTTP server on the native engine (FastAPI + uvicorn).

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``, ``GET /health``,
``GET /metrics`` (Prometheus text), ``POST /tokenize``, ``POST /detokenize``. Chat responses carry the reasoning
apart (``message.reasoning_content`` and ``reasoning``; ``delta.reasoning_content`` when streaming) and count it in
``usage.completion_tokens_details.reasoning_tokens``. Extensions: ``top_k``, ``thinking_token_budget`` (at the
budget the engine writes ``</think>`` and the answer follows) and ``vibethinker: {select, k}``, verified best-of-n
(:mod:`.best_of_n`). Errors have OpenAI's shape and name the field; a full queue answers 429.
"""

from __future__ import annotations

import json
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from vibethinker.generate.native.online import EngineClosed, QueueFull
from vibethinker.generate.types import SamplingParams
from vibethinker.serve.best_of_n import select_response
from vibethinker.serve.metrics import Metrics
from vibethinker.serve.model import ServedModel
from vibethinker.serve.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    DetokenizeRequest,
    SamplingFields,
    TokenizeRequest,
)
from vibethinker.serve.reasoning import prompt_opens_reasoning
from vibethinker.serve.responses import APIError, LogprobFormatter, new_id, now, usage
from vibethinker.serve.sample_text import SampleText


def create_app(served: ServedModel, shutdown_timeout_s: float = 30.0, upstream=None, route_config=None) -> FastAPI:
    """The app; with ``upstream`` (route/upstream.py) chat requests go through the router (route/front.py)."""
    metrics = Metrics()
    formatter = LogprobFormatter(served.tokenizer)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        served.engine.close(timeout=shutdown_timeout_s)  # in flight: finished, or cancelled at the deadline
        if upstream is not None:
            await upstream.close()

    app = FastAPI(title="vibethinker", lifespan=lifespan)

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError):
        metrics.count_error(error.status)
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        first = error.errors()[0]
        location = [str(part) for part in first.get("loc", ()) if part != "body"]
        if first.get("type") == "json_invalid":
            message, param = f"malformed JSON: {first.get('ctx', {}).get('error', first.get('msg'))}", None
        elif first.get("type") == "extra_forbidden":
            message, param = f"unknown field {'.'.join(location)!r}", ".".join(location)
        else:
            message, param = f"{'.'.join(location) or 'body'}: {first.get('msg')}", ".".join(location) or None
        return await api_error(request, APIError(400, message, param))

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": served.name, "object": "model", "created": served.created,
                                             "owned_by": "vibethinker", "max_model_len": served.max_model_len}]}

    @app.get("/metrics")
    async def prometheus():
        return PlainTextResponse(metrics.render(served.engine.stats()), media_type="text/plain; version=0.0.4")

    @app.post("/tokenize")
    async def tokenize(body: TokenizeRequest):
        served.check_model(body.model)
        text = body.prompt if body.prompt is not None else served.render_chat(body.messages,
                                                                              body.add_generation_prompt)
        ids = served.encode(text)
        return {"tokens": ids, "count": len(ids), "max_model_len": served.max_model_len}

    @app.post("/detokenize")
    async def detokenize(body: DetokenizeRequest):
        served.check_model(body.model)
        _check_token_ids(served, body.tokens, "tokens")
        return {"prompt": served.tokenizer.decode(body.tokens)}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatCompletionRequest, request: Request):
        served.check_model(body.model)
        prompt = served.render_chat(body.messages)
        plan = _plan(served, body, served.encode(prompt), "messages")
        plan.opened = prompt_opens_reasoning(prompt)
        plan.question = body.messages[-1].text()
        if upstream is not None:
            from vibethinker.route.front import routed_chat

            metrics.count_request("chat")
            return await routed_chat(served, metrics, body, plan, upstream, route_config)
        return await _respond(served, metrics, formatter, body, plan, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        served.check_model(body.model)
        if isinstance(body.prompt, str) or (body.prompt and isinstance(body.prompt[0], str)):
            text = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
            ids = served.encode(text)
        else:
            ids = list(body.prompt)
            _check_token_ids(served, ids, "prompt")
            text = served.tokenizer.decode(ids)
        plan = _plan(served, body, ids, "prompt")
        plan.opened, plan.question = prompt_opens_reasoning(text), text
        return await _respond(served, metrics, formatter, body, plan, chat=False)

    return app


def _check_token_ids(served: ServedModel, ids: list[int], field: str) -> None:
    vocab = len(served.tokenizer)
    bad = next((i for i, t in enumerate(ids) if not 0 <= t < vocab), None)
    if bad is not None:
        raise APIError(400, f"{field}[{bad}] = {ids[bad]} is not a token id (vocabulary {vocab})", f"{field}.{bad}")


def _usage(plan: "Plan", samples, cached: int, chat: bool) -> dict:
    """Usage of a request over all its samples (best-of-n counts the k drawn)."""
    completion_tokens = sum(len(sample.token_ids) for sample in samples)
    reasoning = sum(sample.reasoning_token_count() for sample in samples) if chat else 0
    return usage(len(plan.prompt_ids), completion_tokens, reasoning, cached)


class Plan:
    """A checked request: prompt ids, sampling, stop tokens, budget, samples."""

    def __init__(self, prompt_ids, sampling, stop_ids, budget, top):
        self.prompt_ids, self.sampling, self.stop_ids, self.budget, self.top = prompt_ids, sampling, stop_ids, \
            budget, top
        self.opened, self.question = False, ""


def _plan(served: ServedModel, body: SamplingFields, prompt_ids: list[int], prompt_field: str) -> Plan:
    if not prompt_ids:
        raise APIError(400, f"{prompt_field}: the prompt is empty", prompt_field)
    window = served.max_model_len
    if len(prompt_ids) >= window:
        raise APIError(400, f"{prompt_field}: the prompt has {len(prompt_ids)} tokens; this model's window "
                            f"(max_model_len) is {window}", prompt_field)
    limit_field = "max_completion_tokens" if getattr(body, "max_completion_tokens", None) else "max_tokens"
    limit = body.token_limit()
    if limit is not None and len(prompt_ids) + limit > window:
        raise APIError(400, f"{limit_field}: {len(prompt_ids)} prompt tokens + {limit} = "
                            f"{len(prompt_ids) + limit} exceeds the window of {window} tokens", limit_field)
    limit = limit or window - len(prompt_ids)
    if body.thinking_token_budget is not None and body.thinking_token_budget >= limit:
        raise APIError(400, f"thinking_token_budget: {body.thinking_token_budget} leaves no room for the answer "
                            f"within {limit_field} = {limit}", "thinking_token_budget")
    n = body.vibethinker.k if body.vibethinker is not None else body.n
    try:
        sampling = SamplingParams(temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                                  max_new_tokens=limit, seed=body.seed, n=n)
    except ValueError as error:
        raise APIError(400, str(error)) from None
    stop_ids = [] if body.ignore_eos else list(served.eos_ids)
    return Plan(prompt_ids, sampling, stop_ids, body.thinking_token_budget, body.n_top())


async def _run(served: ServedModel, plan: Plan, body: SamplingFields, chat: bool):
    """Async iterator of ``(sample index, Piece)`` over the request's samples, stop strings applied."""
    samples = [SampleText(served.tokenizer, body.stop_strings(), chat, plan.opened, served.think_end_ids)
               for _ in range(plan.sampling.n)]
    request_id = uuid.uuid4().hex
    stream = served.stream(request_id, plan.prompt_ids, plan.sampling, plan.stop_ids, plan.budget, plan.top)
    try:
        async for out in stream:
            sample = samples[out.sample_index]
            was_stopped = sample.stopped_by_string
            piece = sample.push(out)
            if sample.stopped_by_string and not was_stopped and out.finish_reason is None:
                served.engine.cancel(request_id, out.sample_index)
            if out.finish_reason == "error":
                raise APIError(500, f"generation failed: {out.error}", kind="server_error")
            yield out, sample, piece
    except ValueError as error:
        raise APIError(400, str(error), "messages" if chat else "prompt") from None
    except QueueFull as error:
        raise APIError(429, str(error), kind="rate_limit_error") from None
    except EngineClosed as error:
        raise APIError(503, str(error), kind="server_error") from None
    finally:
        await stream.aclose()


async def _respond(served, metrics, formatter, body, plan: Plan, chat: bool):
    metrics.count_request("chat" if chat else "completions")
    if body.stream:
        iterator = _run(served, plan, body, chat)
        first = await anext(iterator, None)  # refusals (queue full, ...) become an error status, not a stream
        return StreamingResponse(_sse(served, formatter, body, plan, chat, first, iterator),
                                 media_type="text/event-stream")
    samples, pieces, cached = {}, {}, 0
    async for out, sample, piece in _run(served, plan, body, chat):
        samples[out.sample_index] = sample
        pieces.setdefault(out.sample_index, []).append(piece)
        cached = max(cached, out.num_cached_tokens)
    indices = sorted(samples)
    extension = None
    if body.vibethinker is not None:
        selection = select_response([samples[i].full_text for i in indices], plan.question,
                                    body.vibethinker.select, body.vibethinker.domain)
        chosen = selection.index if selection.index is not None else 0
        extension = {"select": body.vibethinker.select, "k": len(indices), "chosen_sample": chosen,
                     "answer": selection.answer, "agreement": selection.agreement,
                     "answered": selection.answered, "clusters": selection.clusters,
                     "clr_margin": selection.margin}
        shown = [chosen]
    else:
        shown = indices
    choices = []
    for position, i in enumerate(shown):
        merged = _merge(pieces[i])
        choice = {"index": position, "finish_reason": samples[i].finish_reason}
        if chat:
            choice["message"] = {"role": "assistant", "content": merged["content"],
                                 "reasoning_content": merged["reasoning"] or None,
                                 "reasoning": merged["reasoning"] or None}
            choice["logprobs"] = formatter.chat(merged["tokens"], plan.top) if body.logprobs else None
        else:
            choice["text"] = merged["text"]
            choice["logprobs"] = formatter.completion(merged["tokens"], plan.top, 0) \
                if body.logprobs is not None else None
        choices.append(choice)
    totals = _usage(plan, samples.values(), cached, chat)
    response = {"id": new_id("chatcmpl" if chat else "cmpl"), "object": "chat.completion" if chat else
                "text_completion", "created": now(), "model": served.name, "choices": choices, "usage": totals}
    if extension is not None:
        response["vibethinker"] = extension
    return response


def _merge(pieces) -> dict:
    return {"reasoning": "".join(p.reasoning for p in pieces), "content": "".join(p.content for p in pieces),
            "text": "".join(p.text for p in pieces), "tokens": [t for p in pieces for t in p.tokens]}


async def _sse(served, formatter, body, plan: Plan, chat: bool, first, iterator):
    """The stream: a role chunk per choice (chat), then each piece as it comes, the finish chunks, the usage chunk
    when asked, ``data: [DONE]``."""
    response_id, created = new_id("chatcmpl" if chat else "cmpl"), now()
    kind = "chat.completion.chunk" if chat else "text_completion"
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(choices, extra=None) -> str:
        payload = {"id": response_id, "object": kind, "created": created, "model": served.name, "choices": choices}
        payload.update(extra or {})
        return f"data: {json.dumps(payload)}\n\n"

    samples, cached, offsets = {}, 0, [0] * plan.sampling.n
    try:
        if chat:
            yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                          "finish_reason": None} for i in range(plan.sampling.n)])
        item = first
        while item is not None:
            out, sample, piece = item
            samples[out.sample_index] = sample
            cached = max(cached, out.num_cached_tokens)
            i = out.sample_index
            if chat:
                for field, text in (("reasoning_content", piece.reasoning), ("content", piece.content)):
                    if text:
                        delta = {field: text, "reasoning": text} if field == "reasoning_content" else {field: text}
                        yield chunk([{"index": i, "delta": delta, "finish_reason": None, "logprobs":
                                      formatter.chat(piece.tokens, plan.top) if body.logprobs else None}])
                        piece.tokens = []  # log-probs ride on the first delta of the piece
                if piece.tokens and body.logprobs:
                    yield chunk([{"index": i, "delta": {}, "finish_reason": None,
                                  "logprobs": formatter.chat(piece.tokens, plan.top)}])
                if piece.finish_reason is not None:
                    yield chunk([{"index": i, "delta": {}, "finish_reason": piece.finish_reason, "logprobs": None}])
            elif piece.text or piece.finish_reason is not None:
                logprobs = formatter.completion(piece.tokens, plan.top, offsets[i]) \
                    if body.logprobs is not None else None
                offsets[i] += len(piece.text)
                yield chunk([{"index": i, "text": piece.text, "finish_reason": piece.finish_reason,
                              "logprobs": logprobs}])
            item = await anext(iterator, None)
        if include_usage:
            yield chunk([], {"usage": _usage(plan, samples.values(), cached, chat)})
        yield "data: [DONE]\n\n"
    except APIError as error:  # after the first chunk the status is sent: the error goes in the stream
        yield f"data: {json.dumps(error.body())}\n\n"
    finally:
        await iterator.aclose()
