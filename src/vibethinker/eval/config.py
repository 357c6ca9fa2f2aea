"""Settings of evaluation (SPEC 3) and of CLR (SPEC 4): leaf models, so a recipe validates without torch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vibethinker.sampling import SamplingOwner, sampling_with_defaults
from vibethinker.utils.fields import resumable

ClaimSource = Literal["tool", "model"]

EvalSampling = sampling_with_defaults(
    "EvalSampling", "Sampling of an evaluation: the protocol's T = 1.0, top-p 0.95, top-k off (SPEC 3).",
    n=(4, "Samples per problem (SPEC 3: math 64, IMO-AnswerBench and GPQA 16, code 8; 4 for the CPU demo)."),
    seed=(0, "Sampling seed; problems are sampled in chunks, chunk c seeded with seed + c * 1_000_003."),
)


class EvalConfig(SamplingOwner):
    """How to evaluate: sampling (SPEC 3), the pass@k list, and the batching of generation and grading."""

    model_config = ConfigDict(extra="forbid")

    sampling: EvalSampling = Field(default_factory=EvalSampling, description=(
        "SPEC 3 sampling; every field can also be written flat (n, temperature, top_p, top_k, max_new_tokens, "
        "seed)."))
    k: list[int] = Field(default_factory=lambda: [1], description=(
        "pass@k values to report; pass@1 is always reported, a k above n is skipped with a note."))
    require_think: bool = Field(True, description=(
        "Grade only the answer after </think> (SPEC 2.5, 5); false for chat models that answer without a "
        "thinking block, e.g. a pretrained instruct model before any SFT."))
    batch_size: int = resumable(64, gt=0, description="Sequences per generation batch.")
    samples_per_chunk: int = resumable(512, gt=0, description=(
        "Sequences handed to the generator at once, so the progress bar moves and grading overlaps generation."))
    score_workers: int = resumable(8, gt=0, description="Threads that grade samples *(our default)*.")
    progress: bool = resumable(True, description="Rich progress bars on stderr, when it is a terminal.")

    @property
    def ks(self) -> list[int]:
        """The pass@k values: pass@1 and ``k``, sorted."""
        return sorted({1, *self.k})

    def check_k(self) -> EvalConfig:
        """Refuse a pass@k that ``n`` samples cannot estimate (a benchmark suite skips those instead)."""
        bad = [k for k in self.k if k < 1 or k > self.n]
        if bad:
            raise ValueError(f"pass@k needs 1 <= k <= n={self.n}; got k={bad}")
        return self

    def flat_dump(self) -> dict:
        """The settings as one flat mapping (sampling fields beside the others), as the eval summaries record them."""
        data = self.model_dump(mode="json")
        return {**data.pop("sampling"), **data, "ks": self.ks}


class CLRConfig(BaseModel):
    """Settings of one CLR run; defaults follow SPEC 4 where it gives them."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(32, ge=1, description="Responses per repetition, K (SPEC 4 step 1); capped at the samples "
                                         "available per problem.")
    m: int = Field(5, ge=1, description="Claims per response, M (SPEC 4 step 2).")
    repetitions: int = Field(8, ge=1, description="Independent repetitions averaged for pass@1, R (SPEC 4 step 6).")
    seed: int = Field(0, description="Seed of the per-repetition draws and of model sampling *(our default)*.")
    temperature: float = Field(0.0, ge=0.0, description="Sampling temperature of the model's extraction and "
                                                        "verification replies; 0 = greedy *(our default)*.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling for those replies *(our default)*.")
    extract_max_new_tokens: int = Field(512, ge=1, description="Token budget of one claim-extraction reply "
                                                               "*(our default)*.")
    verify_max_new_tokens: int = Field(512, ge=1, description="Token budget of one claim-verification reply "
                                                              "*(our default)*.")
    max_response_chars: int = Field(8000, ge=1, description="The extraction prompt shows the last this many "
                                                            "characters of a response, where the decisive steps are "
                                                            "*(our default)*.")
    equivalence_timeout_s: float = Field(5.0, gt=0, description="Wall-clock limit of one math-verify equivalence "
                                                                "check when merging answer clusters *(our default)*.")
