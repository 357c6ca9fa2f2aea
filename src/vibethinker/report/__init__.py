"""Run reports: ``summary.json`` (``stages.<name>.<metric>``), ``report.md`` and a self-contained ``report.html``."""

from vibethinker.report.html import write_html_report
from vibethinker.report.markdown import write_run_report

__all__ = ["write_html_report", "write_run_report"]
