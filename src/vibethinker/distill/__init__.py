"""Offline self-distillation (SPEC 2.6): verified traces of the RL checkpoints, ranked by the student's S_LP,
filtered per (domain, length bucket), mixed across domains, then SFT of the student."""

from vibethinker.utils.lazy import lazy_exports

_EXPORTS = {
    "DistillConfig": "vibethinker.distill.config",
    "HarvestResult": "vibethinker.distill.harvest",
    "ScoredTrace": "vibethinker.distill.selection",
    "Trace": "vibethinker.distill.harvest",
    "harvest_traces": "vibethinker.distill.harvest",
    "harvest_with_stats": "vibethinker.distill.harvest",
    "length_bucket": "vibethinker.distill.selection",
    "nearest_rank": "vibethinker.distill.selection",
    "run_self_distillation": "vibethinker.distill.run",
    "select_traces": "vibethinker.distill.selection",
    "selection_reasons": "vibethinker.distill.selection",
    "selection_report": "vibethinker.distill.selection",
    "student_logprob_scores": "vibethinker.distill.scoring",
    "training_problems": "vibethinker.distill.run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
