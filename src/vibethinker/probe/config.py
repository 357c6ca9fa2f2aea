"""Settings of diversity probing (SPEC 2.2 steps 2-3). Defaults follow SPEC 2.2 unless marked *(our default)*."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from vibethinker.sampling import SamplingOwner, sampling_with_defaults
from vibethinker.utils.fields import resumable

ProbeSampling = sampling_with_defaults(
    "ProbeSampling", "Sampling of the Pass@K probing samples (SPEC 2.2).",
    temperature=(1.0, "Sampling temperature of the probing samples (SPEC 2.2: our default 1.0); Pass@K needs real "
                      "sampling, never greedy decoding.", {"gt": 0}),
    top_p=(1.0, "Nucleus cut of the probing samples *(SPEC 2.2: our default 1.0, the untruncated distribution)*; "
                "the evaluation protocol's 0.95 (SPEC 3) would narrow exactly the diversity that probing measures."),
    max_new_tokens=(4096, "Response length limit of a probing sample *(our default; raise it to the SFT trace "
                          "length for real models)*. A response cut here is still graded on its text, as in "
                          "evaluation (SPEC 3)."),
    n=(16, "Samples per probing problem, n >= K, for the unbiased estimator 1 - C(n-c, K) / C(n, K) (SPEC 2.2 step "
           "2; n = 16 is our default). More samples lower the estimator's variance, not its mean."),
    seed=(0, "Seed of the sampling. Every checkpoint is probed with the same seed, so checkpoints differ by their "
             "weights only, not by the luck of the draw."),
)


class ProbeConfig(SamplingOwner):
    model_config = ConfigDict(extra="forbid")

    k: int = Field(8, ge=1, description=(
        "K of Pass@K, the probing score P_i(t) of checkpoint t on sub-domain i (SPEC 2.2 step 2; K = 8 is our "
        "default, the reports leave it unstated)."))
    sampling: ProbeSampling = Field(default_factory=ProbeSampling, description=(
        "Sampling of the probing samples: temperature 1.0 and top-p 1.0, since Pass@K measures how many distinct "
        "valid solutions a checkpoint can reach and needs real sampling, never greedy decoding (SPEC 2.2)."))
    batch_size: int = resumable(64, ge=1, description="Sequences per generation batch *(our default)*.")
    require_think: bool = Field(True, description=(
        "Grade only the answer after </think> and count a response without it as wrong (SPEC 2.5, SPEC 5)."))
    score_workers: int = resumable(8, ge=1, description=(
        "Threads that grade samples; math checks and programs run in worker processes *(our default)*."))
    device: str | None = resumable(None, description="'cpu', 'cuda' or None for the GPU when there is one.")

    @model_validator(mode="after")
    def _enough_samples(self) -> ProbeConfig:
        if self.n < self.k:
            raise ValueError(f"n={self.n} samples per problem < k={self.k}: the unbiased pass@k needs n >= k "
                             f"(SPEC 2.2)")
        return self
