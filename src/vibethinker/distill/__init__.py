"""Offline self-distillation (SPEC 2.6): verified traces of the RL checkpoints, ranked by the student's S_LP,
filtered per (domain, length bucket), mixed across domains, then SFT of the student."""

from vibethinker.distill.config import DistillConfig
from vibethinker.distill.harvest import HarvestResult, Trace, harvest_traces, harvest_with_stats
from vibethinker.distill.run import run_self_distillation, training_problems
from vibethinker.distill.scoring import student_logprob_scores
from vibethinker.distill.selection import (
    ScoredTrace,
    length_bucket,
    nearest_rank,
    select_traces,
    selection_reasons,
    selection_report,
)

__all__ = [
    "DistillConfig", "HarvestResult", "ScoredTrace", "Trace", "harvest_traces", "harvest_with_stats", "length_bucket",
    "nearest_rank", "run_self_distillation", "select_traces", "selection_reasons", "selection_report",
    "student_logprob_scores", "training_problems",
]
