"""The router in the server: answer a chat request locally when k samples agree, else ask the large model.

Per request (``vibethinker serve MODEL --upstream URL --upstream-model NAME``):

1. the domain gate (:mod:`.domain_gate`) sends open-domain questions straight upstream;
2. otherwise k samples are drawn locally (with the thinking budget), their final answers clustered as verified
   best-of-n does (serve/best_of_n.py), and the confidence is the chosen cluster's share of the k samples
   (``majority``) or the CLR margin (``clr``);
3. the local answer is returned when the confidence reaches ``threshold``; no final answer, a chosen response cut
   at the length limit, or a lower confidence escalate;
4. with ``majority``, sampling stops as soon as the outcome is decided: the leading cluster already holds
   ``ceil(threshold * k)`` samples (answer locally), or it cannot reach that with the samples still running
   (escalate). CLR's margin needs every sample, so ``clr`` draws all k.

The response's ``vibethinker.route`` says where it was answered, why, the confidence, and the tokens spent locally
and upstream (streamed: on the finish chunk); ``/metrics`` counts both. An upstream failure is an error (502 / 504),
never a local answer.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Literal

from vibethinker.route.domain_gate import is_verifiable
from vibethinker.route.upstream import Upstream
from vibethinker.serve.best_of_n import select_response
from vibethinker.serve.responses import APIError, new_id, now


@dataclass
class RouteConfig:
    k: int = 8  # local samples per request
    threshold: float = 0.6  # confidence at or above which the local answer is returned
    signal: Literal["majority", "clr"] = "majority"
    thinking_budget: int | None = None  # applied when the request sets none
    early_stop: bool = True

    def __post_init__(self):
        if self.k < 1 or not 0 < self.threshold <= 1 or self.signal not in ("majority", "clr"):
            raise ValueError(f"route: k >= 1, 0 < threshold <= 1, signal majority|clr (got k={self.k}, "
                             f"threshold={self.threshold}, signal={self.signal!r})")


def decided(responses: list[str], k: int, threshold: float) -> bool:
    """Whether the finished responses settle a majority route: the leading cluster (clustered as the final choice
    is, equivalent answers merged) has the votes needed, or cannot get them from the samples still running."""
    clusters = select_response(responses, None, "majority").clusters
    top, need = (clusters[0]["size"] if clusters else 0), math.ceil(threshold * k)
    return top >= need or top + (k - len(responses)) < need


async def routed_chat(served, metrics, body, plan, upstream: Upstream, config: RouteConfig):
    """The routed answer; with ``stream: true`` the same answer as server-sent events once it is known (the route
    is decided only after sampling, so the stream starts then)."""
    answer = await _route_and_answer(served, metrics, body, plan, upstream, config)
    if not body.stream:
        return answer
    from fastapi.responses import StreamingResponse

    return StreamingResponse(_as_events(answer, bool(body.stream_options and body.stream_options.include_usage)),
                             media_type="text/event-stream")


async def _as_events(answer: dict, include_usage: bool):
    base = {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
            "model": answer["model"]}
    for choice in answer["choices"]:
        index, message = choice.get("index", 0), choice.get("message") or {}
        deltas = [{"role": "assistant", "content": ""}]
        if message.get("reasoning_content"):
            deltas.append({"reasoning_content": message["reasoning_content"],
                           "reasoning": message["reasoning_content"]})
        if message.get("content"):
            deltas.append({"content": message["content"]})
        for delta in deltas:
            chunk = base | {"choices": [{"index": index, "delta": delta, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
        final = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
        yield f"data: {json.dumps(base | {'choices': [final], 'vibethinker': answer['vibethinker']})}\n\n"
    if include_usage:
        yield f"data: {json.dumps(base | {'choices': [], 'usage': answer.get('usage')})}\n\n"
    yield "data: [DONE]\n\n"


async def _route_and_answer(served, metrics, body, plan, upstream: Upstream, config: RouteConfig) -> dict:
    from vibethinker.serve.app import _merge, _run, _usage  # the server's own sampling path

    if not is_verifiable(plan.question):
        return await _escalate(served, metrics, body, upstream, "open-domain question", None, 0)
    budget = plan.budget if plan.budget is not None else config.thinking_budget
    if budget is not None and budget >= plan.sampling.max_new_tokens:
        raise APIError(400, f"thinking budget {budget} leaves no room for the answer within "
                            f"{plan.sampling.max_new_tokens} tokens", "thinking_token_budget")
    plan.sampling, plan.budget = dataclasses.replace(plan.sampling, n=config.k), budget
    samples, pieces, cached, finished = {}, {}, 0, []
    early = False
    stream = _run(served, plan, body, True)
    try:
        async for out, sample, piece in stream:
            samples[out.sample_index] = sample
            pieces.setdefault(out.sample_index, []).append(piece)
            cached = max(cached, out.num_cached_tokens)
            if piece.finish_reason is not None:
                finished.append(out.sample_index)
                if config.signal == "majority" and config.early_stop and len(finished) < config.k and decided(
                        [samples[i].full_text for i in finished], config.k, config.threshold):
                    early = True
                    break
    finally:
        await stream.aclose()  # cancels the samples still running and frees their cache blocks at once
    local_usage = _usage(plan, samples.values(), cached, True)  # stopped samples' tokens were spent too
    local_tokens = local_usage["completion_tokens"]
    selection = select_response([samples[i].full_text for i in finished], plan.question, config.signal)
    chosen = finished[selection.index] if selection.index is not None else None
    size = round(selection.agreement * len(finished))
    confidence = selection.margin if config.signal == "clr" else size / config.k
    route = {"signal": config.signal, "threshold": config.threshold, "k": config.k, "samples": len(finished),
             "stopped_early": early, "confidence": confidence, "answer": selection.answer}
    if chosen is None:
        return await _escalate(served, metrics, body, upstream, "no final answer", route, local_tokens)
    if samples[chosen].finish_reason == "length":
        return await _escalate(served, metrics, body, upstream, "cut at the length limit", route, local_tokens)
    if confidence < config.threshold:
        return await _escalate(served, metrics, body, upstream, "low confidence", route, local_tokens)
    merged = _merge(pieces[chosen])
    metrics.count_route("local", "confident", local_tokens, 0)
    message = {"role": "assistant", "content": merged["content"], "reasoning_content": merged["reasoning"] or None,
               "reasoning": merged["reasoning"] or None}
    return {"id": new_id("chatcmpl"), "object": "chat.completion", "created": now(), "model": served.name,
            "choices": [{"index": 0, "finish_reason": samples[chosen].finish_reason, "message": message,
                         "logprobs": None}], "usage": local_usage,
            "vibethinker": {"route": route | {"answered_by": "local", "reason": "confident",
                                              "local_tokens": local_tokens, "upstream_tokens": 0}}}


async def _escalate(served, metrics, body, upstream: Upstream, reason: str, route: dict | None,
                    local_tokens: int) -> dict:
    request = {"messages": [m.model_dump(exclude_none=True) for m in body.messages]}
    for field in ("max_tokens", "max_completion_tokens", "temperature", "top_p", "seed", "stop"):
        value = getattr(body, field, None)
        if value is not None:
            request[field] = value
    answer = await upstream.chat(request)
    upstream_tokens = int((answer.get("usage") or {}).get("total_tokens", 0))
    metrics.count_route("upstream", reason, local_tokens, upstream_tokens)
    return {"id": new_id("chatcmpl"), "object": "chat.completion", "created": now(), "model": served.name,
            "choices": answer.get("choices", []), "usage": answer.get("usage"),
            "vibethinker": {"route": (route or {}) | {"answered_by": "upstream", "reason": reason,
                                                      "upstream_model": upstream.config.model,
                                                      "local_tokens": local_tokens,
                                                      "upstream_tokens": upstream_tokens}}}
