"""OpenR1-Math rows: ``problem``, ``solution``, ``answer``, ``messages``, optional ``generations`` with
``correctness_math_verify``, plus ``problem_type``, ``question_type``, ``source``, ``uuid``.

Traces (in order, duplicates dropped): the assistant turns of ``messages``, then the ``generations`` whose
``correctness_math_verify`` flag is true (generations without that list are unverified and not used). Each becomes
the trace form of :func:`.chat.to_trace`: ``<think>`` reasoning kept with its final part, tag-less text kept whole
after an empty think block, and a response without a final answer (reasoning cut off before ``</think>``, or
nothing after it) dropped and counted in ``meta["traces_dropped_no_final"]``.
The human ``solution`` stays in ``meta``; ``problem_type`` is the sub-domain; the upstream ``source`` (olympiads,
cn_contest, ...) is ``meta["origin"]``.
"""

from __future__ import annotations

from vibethinker.data.formats.base import Converter, RowContext
from vibethinker.data.formats.chat import assistant_turns, to_trace

CARRIED = ("question_type", "correctness_count", "is_reasoning_complete", "finish_reasons")


def detect(row: dict) -> bool:
    return "problem" in row and ("messages" in row or "generations" in row)


def convert(row: dict, ctx: RowContext) -> dict:
    problem = ctx.text(row, "problem")
    answer = ctx.text(row, "answer")
    responses = assistant_turns(ctx.listing(row, "messages", required=False) or [], ctx, "messages")
    responses += _verified_generations(row, ctx)
    traces, dropped = [], 0
    for response in responses:
        trace = to_trace(response)
        if trace is None:
            dropped += 1
        elif trace not in traces:
            traces.append(trace)
    meta = {"solution": ctx.text(row, "solution", required=False), "origin": row.get("source"),
            "uuid": row.get("uuid"), **{key: row.get(key) for key in CARRIED}}
    if dropped:
        meta["traces_dropped_no_final"] = dropped
        ctx.notes.append("traces: dropped responses without a final answer")
    return ctx.record(id=ctx.make_id(row.get("uuid")), domain=ctx.domain(None, "math", "domain"),
                      subdomain=ctx.subdomain(row.get("problem_type")),
                      difficulty=ctx.difficulty(row.get("difficulty"), meta), problem=problem, answer=answer,
                      traces=traces, meta=meta)


def _verified_generations(row: dict, ctx: RowContext) -> list[str]:
    generations = ctx.listing(row, "generations", required=False)
    flags = ctx.listing(row, "correctness_math_verify", required=False)
    if not generations or flags is None:
        return []
    if len(flags) != len(generations):
        ctx.fail("correctness_math_verify", f"{len(flags)} flags for {len(generations)} generations")
    kept = []
    for position, (text, correct) in enumerate(zip(generations, flags)):
        if not isinstance(text, str):
            ctx.fail(f"generations[{position}]", f"expected text, got {type(text).__name__}")
        if correct is True:
            kept.append(text)
    return kept


OPENR1 = Converter("openr1", "OpenR1-Math (problem, answer, messages, generations + correctness_math_verify)",
                   detect, convert)
