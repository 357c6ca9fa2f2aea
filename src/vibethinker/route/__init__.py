"""Hybrid routing (SPEC 6): answer locally when the samples agree, escalate to a large model when they do not.

``curve`` holds the cost-quality arithmetic (APGR, recovery shares, risk-coverage, calibration), ``offline`` builds
it from two eval folders (``vibethinker route-eval``), ``report`` draws it.
"""
