"""Run reports: ``summary.json`` (``stages.<name>.<metric>``), ``report.md`` and a self-contained ``report.html``."""

from vibethinker.utils.lazy import lazy_exports

_EXPORTS = {
    "write_html_report": "vibethinker.report.html",
    "write_run_report": "vibethinker.report.markdown",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
