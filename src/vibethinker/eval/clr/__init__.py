"""CLR, Claim-Level Reliability assessment at test time (SPEC 4): score each sampled response by its verified claims,
``r_k = ((1/M) * sum_m v_{k,m}) ** M``, and answer with the cluster of equivalent answers with the largest sum of r_k.

``scoring`` holds the formulas and the repeated-draw protocol, ``tool_claims`` and ``model_claims`` the two claim
sources (exact arithmetic on the trace's equations; the model extracting and verifying its own claims), ``run`` the
driver over an eval run's ``samples.jsonl`` and ``command`` the ``vibethinker clr`` command.
"""

from vibethinker.eval.clr.model_claims import ModelAssessment, ModelClaims, assess_with_model, parse_claim_list, \
    parse_verdict
from vibethinker.eval.clr.run import CLRConfig, load_samples, run_clr
from vibethinker.eval.clr.scoring import clr_pass_at_1, clr_select, majority_select, merge_equivalent_keys, \
    response_reliability
from vibethinker.eval.clr.tool_claims import Claim, ToolClaims, extract_tool_claims

__all__ = ["CLRConfig", "Claim", "ModelAssessment", "ModelClaims", "ToolClaims", "assess_with_model", "clr_pass_at_1",
           "clr_select", "extract_tool_claims", "load_samples", "majority_select", "merge_equivalent_keys",
           "parse_claim_list", "parse_verdict", "response_reliability", "run_clr"]
