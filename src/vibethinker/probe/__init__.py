"""Diversity-exploring distillation, probing half (SPEC 2.2): Pass@K per sub-domain per SFT checkpoint, the
specialist of each sub-domain, and the fusion weights that the merge step uses."""

from vibethinker.utils.lazy import lazy_exports

_EXPORTS = {
    "CheckpointProbe": "vibethinker.probe.probing",
    "ProbeConfig": "vibethinker.probe.config",
    "ProbeResult": "vibethinker.probe.probing",
    "Specialist": "vibethinker.probe.probing",
    "SubdomainScore": "vibethinker.probe.probing",
    "fusion_weights": "vibethinker.probe.probing",
    "list_checkpoints": "vibethinker.probe.probing",
    "probe_checkpoints": "vibethinker.probe.probing",
    "select_specialists": "vibethinker.probe.probing",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
