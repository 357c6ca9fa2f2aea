"""Settings of offline self-distillation (SPEC 2.6). The reports give no numbers for this stage, so apart from the
verification rules (SPEC 2.5) every default is *(our default)*."""

from __future__ import annotations

from itertools import pairwise

from pydantic import ConfigDict, Field, field_validator, model_validator

from vibethinker.data.records import Domain
from vibethinker.sampling import SamplingOwner, sampling_with_defaults
from vibethinker.sft.config import SFTConfig
from vibethinker.utils.fields import resumable

TeacherSampling = sampling_with_defaults(
    "TeacherSampling", "Sampling of the teacher checkpoints in the harvest (SPEC 2.6 step 1).",
    temperature=(1.0, "Sampling temperature of the teachers: 1.0, the RL rollout setting the checkpoints were "
                      "trained with (SPEC 2.3). *(our default)*", {"gt": 0}),
    top_p=(1.0, "Sampling top-p of the teachers, as in RL (SPEC 2.3). *(our default)*"),
    max_new_tokens=(16384, "Response length limit of the teachers. Responses cut here are never kept, even when "
                           "their answer verifies: a trace that stops mid-thought teaches the student to stop "
                           "mid-thought. *(our default)*"),
    n=(8, "Responses sampled per problem from EACH teacher checkpoint (SPEC 2.6 step 1: the math, code and STEM "
          "RL checkpoints); also written flat as samples_per_problem. *(our default)*"),
    seed=(0, "Seed of the teachers' sampling and of the domain-mix downsampling."),
)


class DistillConfig(SamplingOwner):
    model_config = ConfigDict(extra="forbid")
    sampling_aliases = {"samples_per_problem": "n"}

    # --- harvesting (SPEC 2.6 step 1) ---
    sampling: TeacherSampling = Field(default_factory=TeacherSampling, description=(
        "Sampling of the teachers: the RL rollout setting the checkpoints were trained with (SPEC 2.3); n is "
        "samples_per_problem. Every field can also be written flat."))
    require_think: bool = Field(True, description=(
        "A kept response must contain </think> before its graded answer (SPEC 2.5)."))
    dedupe: bool = Field(True, description=(
        "Keep one copy of identical response texts of the same problem, across all teachers; copies would only "
        "up-weight that trace in SFT. *(our default)*"))
    generation_batch_size: int = resumable(64, gt=0, description="Sequences per generate() call. *(our default)*")

    # --- scoring (SPEC 2.6 step 2) ---
    score_batch_size: int = Field(8, gt=0, description=(
        "Traces per student forward pass when computing S_LP; memory grows with batch x length x vocabulary. "
        "*(our default)*"))

    # --- selection (SPEC 2.6 step 3) ---
    length_bucket_edges: list[int] = Field([0, 256, 1024, 4096], description=(
        "Lower edges of the response-length buckets in tokens, strictly increasing from 0: [0, 256, 1024, 4096] "
        "means [0, 256), [256, 1024), [1024, 4096), [4096, inf). Traces are ranked within (domain, bucket) "
        "(SPEC 2.6 step 3), so long traces, whose mean NLL is naturally lower, are not all cut. *(our default)*"))
    min_tokens: int = Field(32, ge=0, description=(
        "Drop traces with fewer response tokens than this before ranking (SPEC 2.6 step 3: very short traces). "
        "*(our default)*"))
    drop_top_fraction: float = Field(0.02, ge=0, lt=1, description=(
        "Per (domain, bucket): drop the floor(fraction * n) traces of highest S_LP as outliers -- format errors and "
        "noise that merely happen to verify (SPEC 2.6 step 3). *(our default)*"))
    keep_low_quantile: float = Field(0.5, ge=0, le=1, description=(
        "Lower edge of the kept S_LP band, a nearest-rank quantile of the group's scores after the outlier drop "
        "(SPEC 2.6 step 3: keep the middle-to-high range, high S_LP = more left to learn). *(our default)*"))
    keep_high_quantile: float = Field(0.98, ge=0, le=1, description=(
        "Upper edge of the kept S_LP band, a nearest-rank quantile of the same scores; together with "
        "drop_top_fraction the default trims roughly the top 4% of each group. *(our default)*"))
    max_traces_per_problem: int | None = Field(4, gt=0, description=(
        "Keep at most this many traces of one problem, highest S_LP first, so a few easy problems with many "
        "correct samples do not dominate (None = no cap). *(our default)*"))
    domain_weights: dict[Domain, float] | None = Field(None, description=(
        "Target share of each domain in the final set (SPEC 2.6 step 3: mix domains), e.g. {math: 0.5, code: 0.3, "
        "stem: 0.2}; normalised to sum 1. Domains are downsampled (seeded) until the shares hold; a domain left out "
        "is dropped. None keeps the harvested proportions. *(our default)*"))
    device: str | None = Field(None, description=(
        "Device of generation and scoring: 'cpu', 'cuda' or None for the GPU when there is one. SFT uses sft.device."))

    # --- student SFT (SPEC 2.6 step 3, last sentence) ---
    sft: SFTConfig = Field(default_factory=SFTConfig, description=(
        "SFT of the student on the selected traces; the reports give no settings for this stage, so the SPEC 2.1 "
        "defaults apply. Note that sft.traces_per_problem and sft.seq_len can drop further traces."))

    @field_validator("length_bucket_edges")
    @classmethod
    def _edges_increasing_from_zero(cls, edges: list[int]) -> list[int]:
        if not edges or edges[0] != 0:
            raise ValueError(f"must start at 0 so every length has a bucket, got {edges}")
        if any(b <= a for a, b in pairwise(edges)):
            raise ValueError(f"must be strictly increasing, got {edges}")
        return edges

    @field_validator("domain_weights")
    @classmethod
    def _weights_positive_sum(cls, weights: dict[str, float] | None) -> dict[str, float] | None:
        if weights is None:
            return None
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"weights must be >= 0, got {weights}")
        if sum(weights.values()) <= 0:
            raise ValueError(f"weights must have a positive sum, got {weights}")
        return weights

    @model_validator(mode="after")
    def _band_ordered(self) -> DistillConfig:
        if self.keep_low_quantile > self.keep_high_quantile:
            raise ValueError(f"keep_low_quantile ({self.keep_low_quantile}) must not exceed keep_high_quantile "
                             f"({self.keep_high_quantile})")
        return self
