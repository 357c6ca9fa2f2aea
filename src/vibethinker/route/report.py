"""``route_eval.html``: accuracy against the escalated share and risk against coverage, per signal, with the table
of APGR (and its interval), recovery shares, AURC and calibration. Self-contained like the run report."""

from __future__ import annotations

from vibethinker.report.blocks import escape, image, section, table
from vibethinker.report.figures import _png, _pyplot
from vibethinker.report.html import CSS

STYLES = {"majority": "-", "clr": "-", "length": "--", "random": ":", "oracle": "-."}


def curves_figure(result: dict) -> bytes:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for signal, figures in result["signals"].items():
        left.plot(figures["curve"]["share"], figures["curve"]["accuracy"], STYLES.get(signal, "-"), label=signal)
        if signal != "oracle":
            right.plot(figures["risk_coverage"]["coverage"], figures["risk_coverage"]["risk"],
                       STYLES.get(signal, "-"), label=signal)
    left.set(xlabel="share of requests escalated to the large model", ylabel="accuracy",
             title="cost-quality (lowest confidence escalated first)")
    right.set(xlabel="coverage (share answered locally)", ylabel="local error rate", title="risk-coverage")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    return _png(fig)


def render(result: dict) -> str:
    intervals = result["intervals"]
    rows = []
    for signal, figures in result["signals"].items():
        ci = intervals.get(f"{signal}_apgr_ci")
        rows.append([signal, figures["apgr"], "–" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]",
                     figures["share_for_50%_gap"], figures["share_for_80%_gap"], figures["aurc"],
                     figures.get("ece")])
    verdict = result["clr_beats_majority"]
    diff = intervals.get("clr_minus_majority_apgr_ci")
    words = ("CLR margin routes better than majority agreement: the interval of the APGR difference is above 0"
             if verdict else "CLR margin does not route better than majority agreement here"
             + ("" if diff is None else f" (APGR difference interval [{diff[0]:.3f}, {diff[1]:.3f}])"))
    body = (f"<p>{result['problems']} problems; local {escape(result['local'])}, upstream "
            f"{escape(result['upstream'])}; local accuracy {result['signals']['majority']['local_accuracy']:.3f}, "
            f"upstream {result['signals']['majority']['upstream_accuracy']:.3f}. {escape(words)}.</p>"
            + table(["signal", "APGR", "95% CI", "share for 50% of the gap", "share for 80%", "AURC", "ECE"], rows)
            + image(curves_figure(result), "routing curves"))
    _, _, html = section("route", "Routing: local model vs escalation", body)
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>route-eval</title>"
            f"<style>{CSS}</style></head><body><main>{html}</main></body></html>\n")
