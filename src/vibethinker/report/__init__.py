"""Run reports: ``summary.json`` (``stages.<name>.<metric>``) and ``report.md`` with tables and curves."""

from vibethinker.report.markdown import write_run_report

__all__ = ["write_run_report"]
