"""Code judging: a hardened sandbox (``sandbox``) and a LiveCodeBench-semantics judge (``judge``)."""

from vibethinker.verify.code.judge import JudgeResult, judge_program, stdout_matches, tests_from_lcb, verify_code
from vibethinker.verify.code.sandbox import Limits, RunResult, isolation, run_python

__all__ = ["JudgeResult", "Limits", "RunResult", "isolation", "judge_program", "run_python", "stdout_matches",
           "tests_from_lcb", "verify_code"]
