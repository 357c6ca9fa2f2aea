"""Evaluation: the SPEC 3 metrics and the runner that samples, grades and summarises a model on a problem set."""

from vibethinker.utils.lazy import lazy_exports

_EXPORTS = {
    "BenchmarkInfo": "vibethinker.eval.benchmarks",
    "EvalConfig": "vibethinker.eval.config",
    "SAMPLE_KEYS": "vibethinker.eval.runner",
    "avg_at_n": "vibethinker.eval.metrics",
    "bootstrap_ci": "vibethinker.eval.metrics",
    "cons_at_n": "vibethinker.eval.metrics",
    "cutoff_ratio": "vibethinker.eval.metrics",
    "evaluate": "vibethinker.eval.runner",
    "format_summary_table": "vibethinker.eval.runner",
    "load_benchmark": "vibethinker.eval.benchmarks",
    "majority_answer": "vibethinker.eval.metrics",
    "mean_tokens": "vibethinker.eval.metrics",
    "pass_at_k": "vibethinker.eval.metrics",
    "pass_at_k_curve": "vibethinker.eval.pass_curve",
    "plot_pass_curve": "vibethinker.eval.pass_curve",
    "run_benchmarks": "vibethinker.eval.benchmarks",
    "summarize": "vibethinker.eval.runner",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
