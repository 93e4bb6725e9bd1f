"""`sora serve`: OpenAI's /v1/videos API over HTTP, on this machine's models (FastAPI on uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from sora_cli.cli.options import ModelOpt
from sora_cli.cli.output import DebugOpt, Output, QuietOpt, run


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model: ModelOpt = None,
    workers: Annotated[int | None, typer.Option(
        help="Generation workers: one per GPU (default: every GPU); CPU mode runs one.")] = None,
    max_queue: Annotated[int, typer.Option(help="Queued + running jobs before new ones get 429.")] = 64,
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload accepted (413 above).")] = 50,
    allow_private_webhooks: Annotated[bool, typer.Option(
        help="Let users' webhooks post to loopback and private addresses (refused by default).")] = False,
    poll_after_ms: Annotated[int, typer.Option(help="The openai-poll-after-ms hint on unfinished videos.")] = 1000,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Serve OpenAI's /v1/videos API; clients need a key from `sora server key create USER`."""
    out = Output(quiet=quiet, debug=debug)

    def body() -> None:
        from sora_cli.errors import SoraError, UsageError

        try:
            import uvicorn

            from sora_cli.server.app import create_app
        except ImportError as exc:
            raise SoraError(f"sora serve needs {exc.name}, a dependency of sora-cli: reinstall it") from None
        from sora_cli.config import Config, Paths
        from sora_cli.models import resolve_model
        from sora_cli.plugins import load_registry
        from sora_cli.server.settings import MB, ServerSettings
        from sora_cli.server.store import Store

        if not 1 <= port <= 65535 or max_queue < 1 or max_upload_mb < 1 or poll_after_ms < 0:
            raise UsageError("--port must be 1-65535; --max-queue and --max-upload-mb at least 1")
        config, registry = Config.load(Paths.from_env()), load_registry()
        for warning in registry.warnings:
            out.warn(warning)
        if model is not None:
            resolve_model(model, config, registry)  # a bad --model fails now, not at the first request
        settings = ServerSettings(paths=config.paths, model=model, devices=_devices(workers, out),
                                  max_queue=max_queue, max_upload_bytes=max_upload_mb * MB,
                                  poll_after_ms=poll_after_ms, webhook_allow_private=allow_private_webhooks)
        app = create_app(settings, config, registry=registry)
        if not Store(settings.db_path).users():
            out.warn("no users yet: add one with `sora server user add NAME --admin` (it prints the first key)")
        where = "GPU " + ", ".join(d for d in settings.devices if d) if settings.devices[0] else "CPU"
        out.notice(f"serving /v1/videos on http://{host}:{port} · {len(settings.devices)} worker(s) on {where} · "
                   f"state in {settings.root}")
        # pollers come back every second or so: keep their connections open longer than uvicorn's 5 s
        uvicorn.run(app, host=host, port=port, log_level="warning" if quiet else "info", timeout_keep_alive=75)

    run(out, body)


def _devices(workers: int | None, out: Output) -> tuple[str | None, ...]:
    """One worker per CUDA device; on CPU (or Apple MPS) one worker that lets the engine pick."""
    from sora_cli.errors import UsageError

    if workers is not None and workers < 1:
        raise UsageError("--workers must be at least 1")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        if workers and workers > 1:
            out.warn(f"no CUDA GPU: running one worker, not {workers}")
        return (None,)
    wanted = workers or count
    if wanted > count:
        raise UsageError(f"--workers {wanted}: this machine has {count} GPU(s), and each worker owns one")
    return tuple(f"cuda:{index}" for index in range(wanted))
