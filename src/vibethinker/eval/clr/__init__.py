"""CLR, Claim-Level Reliability assessment at test time (SPEC 4): score each sampled response by its verified claims,
``r_k = ((1/M) * sum_m v_{k,m}) ** M``, and answer with the cluster of equivalent answers with the largest sum of r_k.

``scoring`` holds the formulas and the repeated-draw protocol, ``tool_claims`` and ``model_claims`` the two claim
sources (exact arithmetic on the trace's equations; the model extracting and verifying its own claims), ``run`` the
driver over an eval run's ``samples.jsonl`` and ``command`` the ``vibethinker clr`` command.
"""

from vibethinker.utils.lazy import lazy_exports

_EXPORTS = {
    "CLRConfig": "vibethinker.eval.config",
    "Claim": "vibethinker.eval.clr.tool_claims",
    "ModelAssessment": "vibethinker.eval.clr.model_claims",
    "ModelClaims": "vibethinker.eval.clr.model_claims",
    "ToolClaims": "vibethinker.eval.clr.tool_claims",
    "assess_with_model": "vibethinker.eval.clr.model_claims",
    "clr_pass_at_1": "vibethinker.eval.clr.scoring",
    "clr_select": "vibethinker.eval.clr.scoring",
    "extract_tool_claims": "vibethinker.eval.clr.tool_claims",
    "load_samples": "vibethinker.eval.clr.run",
    "majority_select": "vibethinker.eval.clr.scoring",
    "merge_equivalent_keys": "vibethinker.eval.clr.scoring",
    "parse_claim_list": "vibethinker.eval.clr.model_claims",
    "parse_verdict": "vibethinker.eval.clr.model_claims",
    "response_reliability": "vibethinker.eval.clr.scoring",
    "run_clr": "vibethinker.eval.clr.run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
