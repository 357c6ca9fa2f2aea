"""Claim source (a), as in the report: the model extracts M claims of a response, then verifies each claim alone.

Two batched passes through one :class:`~vibethinker.generate.Generator`:

1. extraction: one prompt per response (``prompts/extract_claims.md``: problem + response, "list up to M claims, one
   per line, each starting with CLAIM:"); ``parse_claim_list`` keeps at most M distinct claims.
2. verification: one prompt per claim (``prompts/verify_claim.md``) holding ONLY the problem and the isolated claim,
   never the trace (SPEC 4 step 3); ``parse_verdict`` reads the last ``VERDICT: true|false``. A missing verdict is
   false and counted, so a model that cannot follow the format cannot raise its own reliability.

Both passes sample with the same settings (greedy by default) and every prompt of every response goes to the
generator in one call per pass, so the backend batches them. The cost is reported as extra tokens: prompt tokens and
generated tokens separately, per pass.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Sequence

from vibethinker.data.records import Problem
from vibethinker.eval.clr.tool_claims import Claim
from vibethinker.generate import Generator, SamplingParams
from vibethinker.verify.extract import THINK_CLOSE, THINK_OPEN

_PLACEHOLDER = re.compile(r"\{(problem|response|claim|m)\}")
_CLAIM_LINE = re.compile(r"^\s*(?:[-*•]\s*|\d+[.)]\s*)?\**CLAIM\s*\d*\s*\**\s*[:.)-]\s*(.*)$", re.I)
_LIST_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.*)$")
_VERDICT = re.compile(r"VERDICT\s*\**\s*[:=-]?\s*[*_`\"'(\[]*\s*(true|false|correct|incorrect|valid|invalid|yes|no)\b",
                      re.I)
MAX_CLAIM_CHARS = 500


def load_template(name: str) -> str:
    """A prompt template from ``prompts/`` with its documenting HTML comment stripped."""
    text = resources.files("vibethinker.eval.clr").joinpath("prompts", name).read_text(encoding="utf-8")
    return re.sub(r"^\s*<!--.*?-->\s*", "", text, count=1, flags=re.S)


def render_template(template: str, **values: object) -> str:
    """Fill ``{problem}`` / ``{response}`` / ``{claim}`` / ``{m}`` in one pass (inserted text is not re-read)."""
    missing = {name for name in _PLACEHOLDER.findall(template) if name not in values}
    if missing:
        raise KeyError(f"template placeholders without a value: {', '.join(sorted(missing))}")
    return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), template)


def problem_text(problem: Problem) -> str:
    """The problem as the model sees it here: the statement plus lettered options for multiple choice."""
    if not problem.choices:
        return problem.problem
    options = "\n".join(f"({chr(ord('A') + i)}) {choice}" for i, choice in enumerate(problem.choices))
    return f"{problem.problem}\n{options}"


def _answer_part(reply: str) -> str | None:
    """What follows the reasoning of a reply; ``None`` when it was cut off inside ``<think>``."""
    cut = reply.rfind(THINK_CLOSE)
    if cut >= 0:
        return reply[cut + len(THINK_CLOSE):]
    return None if THINK_OPEN in reply else reply


def parse_claim_list(reply: str, m: int) -> list[str]:
    """Up to ``m`` distinct claims: ``CLAIM:`` lines, else numbered / bulleted lines, else none."""
    text = _answer_part(reply)
    if text is None:
        return []
    lines = text.splitlines()
    claims = [match.group(1) for line in lines if (match := _CLAIM_LINE.match(line))]
    if not claims:
        claims = [match.group(1) for line in lines if (match := _LIST_LINE.match(line))]
    kept: list[str] = []
    for claim in claims:
        claim = claim.strip().strip("*").strip()
        if claim and len(claim) <= MAX_CLAIM_CHARS and claim not in kept:
            kept.append(claim)
    return kept[:m]


def parse_verdict(reply: str) -> bool | None:
    """The last ``VERDICT: true|false`` after the reasoning; ``None`` when there is none."""
    text = _answer_part(reply)
    matches = _VERDICT.findall(text) if text is not None else []
    if not matches:
        return None
    return matches[-1].lower() in ("true", "correct", "valid", "yes")


@dataclass
class TokenUsage:
    """Extra tokens one pass spent: prompts sent, their tokens, and tokens generated."""

    prompts: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0


@dataclass
class ModelClaims:
    """One response's model-extracted claims with their model verdicts."""

    claims: list[Claim] = field(default_factory=list)
    extraction_reply: str = ""
    missing_verdicts: int = 0

    @property
    def verdicts(self) -> list[bool]:
        return [claim.verdict for claim in self.claims]


@dataclass
class ModelAssessment:
    """All responses' claims plus the token cost of both passes."""

    responses: list[ModelClaims]
    extraction: TokenUsage
    verification: TokenUsage

    def usage(self) -> dict:
        return {"extraction": asdict(self.extraction), "verification": asdict(self.verification),
                "prompt_tokens": self.extraction.prompt_tokens + self.verification.prompt_tokens,
                "generated_tokens": self.extraction.generated_tokens + self.verification.generated_tokens}


def _chat(generator: Generator, message: str) -> str:
    return generator.tokenizer.apply_chat_template([{"role": "user", "content": message}], tokenize=False,
                                                   add_generation_prompt=True)


def _run(generator: Generator, prompts: list[str], sampling: SamplingParams) -> tuple[list[str], TokenUsage]:
    """Generate one reply per prompt in a single call; count prompt and generated tokens."""
    usage = TokenUsage(prompts=len(prompts))
    if not prompts:
        return [], usage
    completions = generator.generate(prompts, sampling)
    if len(completions) != len(prompts):
        raise RuntimeError(f"generator returned {len(completions)} completions for {len(prompts)} prompts")
    usage.prompt_tokens = sum(len(generator.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts)
    usage.generated_tokens = sum(c.num_tokens for c in completions)
    return [c.text for c in completions], usage


def extract_claims(generator: Generator, items: Sequence[tuple[Problem, str]], m: int, sampling: SamplingParams,
                   max_response_chars: int = 8000) -> tuple[list[list[str]], list[str], TokenUsage]:
    """Pass 1: up to ``m`` claims per ``(problem, response)``; returns the claims, the raw replies and the cost."""
    template = load_template("extract_claims.md")
    prompts = []
    for problem, response in items:
        shown = response if len(response) <= max_response_chars else "..." + response[-max_response_chars:]
        prompts.append(_chat(generator, render_template(template, problem=problem_text(problem), response=shown, m=m)))
    replies, usage = _run(generator, prompts, sampling)
    return [parse_claim_list(reply, m) for reply in replies], replies, usage


def verify_claims(generator: Generator, problems: Sequence[Problem], claims: Sequence[list[str]],
                  sampling: SamplingParams) -> tuple[list[ModelClaims], TokenUsage]:
    """Pass 2: one prompt per claim with only its problem and the claim; a missing verdict is false and counted."""
    template = load_template("verify_claim.md")
    owners, prompts = [], []
    for index, (problem, listed) in enumerate(zip(problems, claims, strict=True)):
        for claim in listed:
            owners.append((index, claim))
            prompts.append(_chat(generator, render_template(template, problem=problem_text(problem), claim=claim)))
    replies, usage = _run(generator, prompts, sampling)
    results = [ModelClaims() for _ in problems]
    for (index, claim), reply in zip(owners, replies):
        verdict = parse_verdict(reply)
        results[index].missing_verdicts += verdict is None
        results[index].claims.append(Claim(text=claim, parsed=claim, verdict=bool(verdict), source="model",
                                           detail="missing verdict" if verdict is None else reply[-200:]))
    return results, usage


def assess_with_model(generator: Generator, items: Sequence[tuple[Problem, str]], m: int, *,
                      temperature: float = 0.0, top_p: float = 1.0, extract_max_new_tokens: int = 512,
                      verify_max_new_tokens: int = 512, max_response_chars: int = 8000,
                      seed: int | None = 0) -> ModelAssessment:
    """Extract up to ``m`` claims of each ``(problem, response)`` and verify each claim alone (two batched passes)."""
    if m < 1:
        raise ValueError(f"M (claims per response) must be >= 1, got {m}")
    shared = dict(temperature=temperature, top_p=top_p, seed=seed, n=1)
    claims, replies, extraction = extract_claims(generator, items, m, SamplingParams(
        max_new_tokens=extract_max_new_tokens, **shared), max_response_chars)
    results, verification = verify_claims(generator, [problem for problem, _ in items], claims,
                                          SamplingParams(max_new_tokens=verify_max_new_tokens, **shared))
    for result, reply in zip(results, replies):
        result.extraction_reply = reply
    return ModelAssessment(results, extraction, verification)


__all__ = ["ModelAssessment", "ModelClaims", "TokenUsage", "assess_with_model", "extract_claims", "load_template",
           "parse_claim_list", "parse_verdict", "problem_text", "render_template", "verify_claims"]
