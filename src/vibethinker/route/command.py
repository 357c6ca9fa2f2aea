"""``vibethinker route-eval LOCAL_EVAL UPSTREAM_EVAL --out DIR``: route_eval.json and route_eval.html."""

from __future__ import annotations

from pathlib import Path

import typer


def route_eval_command(
    local: Path = typer.Argument(..., help="Eval folder of the local model (samples.jsonl, n samples per problem)."),
    upstream: Path = typer.Argument(..., help="Eval folder of the large model on the same problems."),
    out: Path = typer.Option(..., "--out", help="Folder for route_eval.json and route_eval.html."),
    k: int | None = typer.Option(None, "--k", min=1, help="Local samples the router draws (default: all)."),
    problems: Path | None = typer.Option(None, "--problems", help=(
        "The problems' JSONL, for CLR's claim checks against the question's numbers (optional).")),
    n_boot: int = typer.Option(1000, "--n-boot", min=10, help="Bootstrap resamples of the problems."),
    seed: int = typer.Option(0, "--seed")) -> None:
    """How a router would trade accuracy for large-model calls: APGR, recovery shares, risk-coverage, calibration."""
    from rich.console import Console
    from rich.markup import escape

    from vibethinker.route.offline import RouteEvalError, route_eval
    from vibethinker.route.report import render
    from vibethinker.utils.files import write_json_atomic, write_text_atomic

    console = Console()
    try:
        questions = None
        if problems is not None:
            from vibethinker.data.records import load_problems

            questions = {p.id: p.problem for p in load_problems(problems)}
        result = route_eval(local, upstream, k, n_boot, seed, questions)
    except (RouteEvalError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    write_json_atomic(out / "route_eval.json", result)
    write_text_atomic(out / "route_eval.html", render(result))
    for signal, figures in result["signals"].items():
        ci = result["intervals"].get(f"{signal}_apgr_ci")
        apgr = "n/a" if figures["apgr"] is None else f"{figures['apgr']:.3f}"
        console.print(f"{signal:9} APGR {apgr}" + (f"  95% CI [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
    console.print(f"wrote {out / 'route_eval.json'} and route_eval.html")
