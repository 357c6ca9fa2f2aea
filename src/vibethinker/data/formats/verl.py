"""verl RL parquet rows: ``data_source``, ``prompt``, ``ability``, ``reward_model``, ``extra_info``.

- ``prompt``: a chat list of ``{role, content}``; the problem is the user content with system messages and known
  instructions removed (:mod:`.chat`); the original list is kept in ``meta["original_prompt"]``.
- ``ability`` selects the domain (math, code, stem/science, instruct; else ``--domain``).
- ``reward_model.ground_truth``: math/stem -> ``answer`` (a list: its first item is the answer, the whole list is
  kept in ``meta["ground_truth"]``); code -> tests (a LiveCodeBench ``input_output`` object or case list, possibly as
  a JSON string).
- ``id``: ``"<data_source>-<split>-<index>"`` from ``extra_info`` when it has an index, else the file convention.
- difficulty and sub-domain from ``extra_info`` (``difficulty``; ``subdomain``/``subject``/``type``) when present.
"""

from __future__ import annotations

from vibethinker.data.formats.base import Converter, RowContext
from vibethinker.data.formats.chat import strip_instructions, user_turn
from vibethinker.data.formats.code_tests import (
    decode_cases,
    tests_from_cases,
    tests_from_io_spec,
)

ABILITY_DOMAIN = {
    "math": "math", "code": "code", "coding": "code", "codegen": "code", "stem": "stem", "science": "stem",
    "physics": "stem", "chemistry": "stem", "biology": "stem", "instruct": "instruct",
    "instruction_following": "instruct", "if": "instruct",
}
SUBDOMAIN_KEYS = ("subdomain", "subject", "type", "problem_type", "category")


def detect(row: dict) -> bool:
    return "prompt" in row and "reward_model" in row


def convert(row: dict, ctx: RowContext) -> dict:
    messages = ctx.listing(row, "prompt")
    original = user_turn(messages, ctx, "prompt")
    problem = strip_instructions(original)
    if not problem:
        ctx.fail("prompt", "the user message is empty once the instruction is removed")
    ability = ctx.text(row, "ability", required=False)
    mapped = ABILITY_DOMAIN.get(ability.strip().lower()) if ability else None
    if ability and mapped is None and ctx.options.domain is None:
        ctx.fail("ability", f"unknown ability {ability!r} (known: {', '.join(sorted(ABILITY_DOMAIN))}); "
                            "pass --domain")
    domain = ctx.domain(mapped, None, "ability")
    reward = ctx.mapping(row, "reward_model")
    extra = ctx.mapping(row, "extra_info", required=False) or {}
    data_source = ctx.text(row, "data_source", required=False)
    meta = {"data_source": data_source, "ability": ability, "reward_style": reward.get("style"),
            "original_prompt": messages, "extra_info": extra or None}
    fields = _gold(domain, reward.get("ground_truth"), extra, meta, ctx)
    subdomain = next((extra[key] for key in SUBDOMAIN_KEYS if isinstance(extra.get(key), str)), None)
    index = extra.get("index")
    native_id = None
    if index is not None:
        native_id = "-".join(str(part) for part in (data_source, extra.get("split"), index) if part is not None)
    return ctx.record(id=ctx.make_id(native_id), domain=domain, subdomain=ctx.subdomain(subdomain),
                      difficulty=ctx.difficulty(extra.get("difficulty"), meta), problem=problem, meta=meta,
                      **fields)


def _gold(domain: str, truth: object, extra: dict, meta: dict, ctx: RowContext) -> dict:
    name = "reward_model.ground_truth"
    if domain == "code":
        truth = ctx.maybe_json(truth, name)
        if isinstance(truth, dict):
            return {"tests": tests_from_io_spec(truth, ctx, name)}
        fn_name = (extra.get("fn_name") or extra.get("func_name")) if isinstance(extra, dict) else None
        return {"tests": tests_from_cases(decode_cases(truth, ctx, name), fn_name, ctx, name)}
    if domain == "instruct":
        if truth is not None:
            meta["ground_truth"] = truth
        return {}
    if hasattr(truth, "tolist"):  # a numpy array when the row came through pandas
        truth = truth.tolist()
    if isinstance(truth, (list, tuple)):
        answers = [str(item) for item in truth if item is not None and str(item).strip()]
        if not answers:
            ctx.fail(name, "an empty list of answers")
        meta["ground_truth"] = list(truth)
        return {"answer": answers[0]}
    if truth is None or not str(truth).strip():
        ctx.fail(name, "missing or empty")
    return {"answer": str(truth)}


VERL = Converter("verl", "verl RL parquet (prompt chat list, reward_model.ground_truth)", detect, convert)
