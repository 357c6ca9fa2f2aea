"""``vibethinker serve MODEL``: load a checkpoint into the native engine and serve it with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vibethinker.utils.progress import console


def serve_command(
    model: Path = typer.Argument(..., help="An HF checkpoint folder (config.json, weights, tokenizer)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    served_model_name: Optional[str] = typer.Option(None, help="The name clients pass as `model` (default: the "
                                                               "folder's name)."),
    max_model_len: Optional[int] = typer.Option(None, help="Longest prompt + completion (default: the model's)."),
    max_num_seqs: int = typer.Option(256, help="Most samples decoded together."),
    kv_cache_gib: Optional[float] = typer.Option(None, help="KV-cache size in GiB (default: half the free GPU "
                                                            "memory; 0.25 GiB on CPU)."),
    max_queue: int = typer.Option(1024, help="Most samples waiting for admission; beyond, requests get 429."),
    dtype: Optional[str] = typer.Option(None, help="bfloat16 | float16 | float32 (default: bf16 on GPU, fp32 on "
                                                   "CPU)."),
    device: Optional[str] = typer.Option(None, help="cuda or cpu (default: cuda when available)."),
    shutdown_timeout: float = typer.Option(30.0, help="Seconds in-flight requests get to finish on shutdown "
                                                      "before they are cancelled."),
    upstream: Optional[str] = typer.Option(None, help="Route chat requests (route/front.py): the large model's "
                                                      "OpenAI-compatible base URL, e.g. http://host:8001/v1."),
    upstream_model: Optional[str] = typer.Option(None, help="The `model` name the upstream serves."),
    upstream_api_key: Optional[str] = typer.Option(None, envvar="VIBETHINKER_UPSTREAM_API_KEY",
                                                   help="Bearer token for the upstream."),
    upstream_timeout: float = typer.Option(120.0, help="Seconds per upstream attempt."),
    upstream_retries: int = typer.Option(2, min=0, help="Further attempts after a failed upstream call."),
    route_k: int = typer.Option(8, min=1, help="Local samples per routed request."),
    route_threshold: float = typer.Option(0.6, help="Confidence at or above which the local answer is returned."),
    route_signal: str = typer.Option("majority", help="majority (agreement of the k answers) | clr (CLR margin)."),
    route_thinking_budget: Optional[int] = typer.Option(None, help="Thinking budget of the local samples when the "
                                                                   "request sets none."),
) -> None:
    """Serve a model with an OpenAI-compatible API (chat, completions, streaming, reasoning apart, thinking budget,
    verified best-of-n)."""
    import uvicorn

    from vibethinker.generate.native import EngineConfig
    from vibethinker.serve.app import create_app
    from vibethinker.serve.model import ServedModel
    from vibethinker.utils.runtime import configure_torch_threads, quiet_transformers

    configure_torch_threads()
    quiet_transformers()
    try:
        config = EngineConfig(max_model_len=max_model_len, max_num_seqs=max_num_seqs, kv_cache_gib=kv_cache_gib,
                              dtype=dtype, device=device)
        served = ServedModel(model, served_model_name, config, max_waiting=max_queue)
        router, route_config = None, None
        if upstream is not None or upstream_model is not None:
            from vibethinker.route.front import RouteConfig
            from vibethinker.route.upstream import Upstream, UpstreamConfig

            if not (upstream and upstream_model):
                raise ValueError("--upstream and --upstream-model go together")
            route_config = RouteConfig(route_k, route_threshold, route_signal, route_thinking_budget)  # type: ignore
            router = Upstream(UpstreamConfig(upstream, upstream_model, upstream_timeout, upstream_retries,
                                             api_key=upstream_api_key))
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    console.print(f"serving {served.name!r} ({model}) on http://{host}:{port}/v1, window {served.max_model_len} "
                  f"tokens, device {served.generator.engine.device}")
    if router is not None:
        console.print(f"routing to {upstream_model!r} at {upstream}: k={route_k}, {route_signal} >= {route_threshold}")
    uvicorn.run(create_app(served, shutdown_timeout, router, route_config), host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=int(shutdown_timeout) + 1)
