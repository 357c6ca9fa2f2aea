"""Evaluation: the SPEC 3 metrics and the runner that samples, grades and summarises a model on a problem set."""

from vibethinker.eval.benchmarks import BenchmarkInfo, load_benchmark, run_benchmarks
from vibethinker.eval.metrics import (avg_at_n, bootstrap_ci, cons_at_n, cutoff_ratio, majority_answer, mean_tokens,
                                      pass_at_k)
from vibethinker.eval.pass_curve import pass_at_k_curve, plot_pass_curve
from vibethinker.eval.runner import EvalConfig, SAMPLE_KEYS, evaluate, format_summary_table, summarize

__all__ = [
    "BenchmarkInfo", "load_benchmark", "run_benchmarks", "pass_at_k_curve", "plot_pass_curve", "EvalConfig", "SAMPLE_KEYS", "avg_at_n", "bootstrap_ci", "cons_at_n", "cutoff_ratio", "evaluate",
    "format_summary_table", "majority_answer", "mean_tokens", "pass_at_k", "summarize",
]
