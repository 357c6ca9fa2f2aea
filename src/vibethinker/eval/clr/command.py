"""``vibethinker clr``: Claim-Level Reliability (SPEC 4) over the samples of an evaluation run.

Thin: parse options, load the problems and ``samples.jsonl``, call :func:`run_clr`, print CLR vs majority vote vs
plain pass@1. Bad input prints ``error: ...`` and exits with status 2, as the other commands do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vibethinker.utils.progress import console


def summary_table(summary: dict) -> Table:
    """CLR, majority vote and plain pass@1 (in %) overall and per domain / sub-domain."""
    table = Table(title=f"CLR ({summary['config']['claim_source']} claims) vs majority vote vs pass@1 (%)")
    for column in ("slice", "problems", "CLR", "majority", "pass@1"):
        table.add_column(column, justify="left" if column == "slice" else "right")
    slices = [("overall", summary)]
    slices += [(f"domain {key}", value) for key, value in summary["by_domain"].items()]
    slices += [(f"subdomain {key}", value) for key, value in summary["by_subdomain"].items()]
    for title, metrics in slices:
        table.add_row(title, str(metrics["n_problems"]), f"{100 * metrics['clr_pass@1']:.1f}",
                      f"{100 * metrics['majority_pass@1']:.1f}", f"{100 * metrics['pass@1']:.1f}")
    return table


def clr_command(
    samples: Path = typer.Argument(..., help="An eval output folder holding samples.jsonl (or the file itself)."),
    data: Path = typer.Option(..., help="The problems the samples answer (JSONL or parquet, vibethinker schema)."),
    out: Path = typer.Option(..., help="Folder for clr.json."),
    source: str = typer.Option("tool", help="Claim source: 'tool' (equations of the trace, checked by exact "
                                            "arithmetic) or 'model' (the model extracts and verifies its claims, "
                                            "as in the report)."),
    model: Optional[Path] = typer.Option(None, help="HF checkpoint that extracts and verifies claims (needed for "
                                                    "--source model)."),
    k: int = typer.Option(32, help="Responses per repetition, K (SPEC 4: 32); capped at the samples available."),
    m: int = typer.Option(5, help="Claims per response, M (SPEC 4: 5)."),
    r: int = typer.Option(8, help="Repetitions averaged for pass@1, R (SPEC 4: 8)."),
    seed: int = typer.Option(0, help="Seed of the repetition draws and of model sampling."),
    batch_size: int = typer.Option(64, help="Sequences per generation batch (--source model)."),
) -> None:
    """Score each response by its claims, answer with the most reliable cluster, compare with majority vote."""
    from vibethinker.data.records import RecordError, load_problems
    from vibethinker.eval.clr.run import CLRConfig, load_samples, run_clr

    try:
        if source not in ("tool", "model"):
            raise ValueError(f"--source must be 'tool' or 'model', got {source!r}")
        if source == "model" and model is None:
            raise ValueError("--source model needs --model (the checkpoint that verifies its own claims)")
        if source == "tool" and model is not None:
            raise ValueError("--model is only used with --source model")
        if model is not None and not model.is_dir():
            raise FileNotFoundError(f"{model}: no such checkpoint folder")
        config = CLRConfig(k=k, m=m, repetitions=r, seed=seed)
        samples_path = samples / "samples.jsonl" if samples.is_dir() else samples
        grouped = load_samples(samples_path)
        problems = load_problems(data)
    except (RecordError, FileNotFoundError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    try:
        generator = None
        if model is not None:
            from vibethinker.generate import make_generator
            from vibethinker.utils.runtime import configure_torch_threads, quiet_transformers

            configure_torch_threads()
            quiet_transformers()
            generator = make_generator(str(model), batch_size=batch_size)
        summary = run_clr(problems, grouped, source, config, generator=generator, out_dir=out)
    except (OSError, ValueError) as exc:  # an unreadable checkpoint, samples that do not match the problems
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    Console().print(summary_table(summary))
    for note in summary["notes"]:
        console.print(f"note: {escape(note)}")
    console.print(f"wrote {out / 'clr.json'}")


__all__ = ["clr_command", "summary_table"]
