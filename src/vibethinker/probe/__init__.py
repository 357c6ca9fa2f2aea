"""Diversity-exploring distillation, probing half (SPEC 2.2): Pass@K per sub-domain per SFT checkpoint, the
specialist of each sub-domain, and the fusion weights that the merge step uses."""

from vibethinker.probe.config import ProbeConfig
from vibethinker.probe.probing import (CheckpointProbe, ProbeResult, Specialist, SubdomainScore, fusion_weights,
                                       list_checkpoints, probe_checkpoints, select_specialists)

__all__ = ["CheckpointProbe", "ProbeConfig", "ProbeResult", "Specialist", "SubdomainScore", "fusion_weights",
           "list_checkpoints", "probe_checkpoints", "select_specialists"]
