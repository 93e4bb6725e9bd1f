"""`sora batch`: many prompts, one warm model, a manifest, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sora_cli.cli.options import (
    DeviceOpt,
    FpsOpt,
    GuidanceOpt,
    IncludePromptOpt,
    ModelOpt,
    NegativeOpt,
    SecondsOpt,
    SeedOpt,
    SizeOpt,
    StepsOpt,
    open_studio,
    render_video,
)
from sora_cli.cli.output import DebugOpt, EventsOpt, JsonOpt, Output, QuietOpt, run
from sora_cli.errors import ExitCode, SoraError, UsageError


def batch(
    file: Annotated[Path, typer.Argument(help="Prompts: .jsonl (one object per line), .csv, or .txt.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-d", help="Where videos and manifest.jsonl go.")],
    resume: Annotated[bool, typer.Option(help="Skip jobs already completed in the manifest.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Check every line, generate nothing.")] = False,
    model: ModelOpt = None,
    seconds: SecondsOpt = None,
    fps: FpsOpt = None,
    size: SizeOpt = None,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    negative_prompt: NegativeOpt = None,
    offload: Annotated[str | None, typer.Option(help="auto|none|model|group|sequential.")] = None,
    device: DeviceOpt = None,
    visible_mark: Annotated[bool | None, typer.Option(
        "--visible-mark/--no-visible-mark", help="Default for lines that do not say.")] = None,
    c2pa_include_prompt: IncludePromptOpt = False,
    server: Annotated[list[str] | None, typer.Option(
        "--server", envvar="SORA_SERVER", show_envvar=False,
        help="Run on this server (repeat for several: jobs are spread over them); also $SORA_SERVER.")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="With --server: jobs in flight at once (default: 2 per server).")] = None,
    retries: Annotated[int, typer.Option(
        help="With --server: tries again after 429, 5xx or a lost connection, backing off, on the next server.")
    ] = 3,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    events: EventsOpt = False,
) -> None:
    """Generate a video for every line of a JSONL, CSV or text file."""
    out = Output(json=json_, quiet=quiet, debug=debug, events=events)

    def body() -> None:
        from sora_cli.batch import read_lines, run_batch

        given = dict(model=model, seconds=seconds, fps=fps, size=size, seed=seed, steps=steps,
                     guidance=guidance, negative_prompt=negative_prompt, offload=offload, device=device,
                     visible_mark=visible_mark, include_prompt=c2pa_include_prompt or None)
        lines = read_lines(file, {k: v for k, v in given.items() if v is not None})
        if not lines:
            raise UsageError(f"batch file {file} has no prompts")
        remote = _remote_studios(server)
        if remote:
            _run_remote(out, remote, lines, out_dir, file, resume=resume, dry_run=dry_run,
                        concurrency=concurrency or 2 * len(remote), retries=retries)
            return
        studio = open_studio(out, source="batch")
        try:
            if dry_run:
                _dry_run(out, studio, lines, out_dir)
                return
            with out.progress() as report:
                result = run_batch(studio, lines, out_dir, resume=resume, report=report,
                                   on_video=lambda v: render_video(out, v))
        finally:
            studio.close()
        _summary(out, result, file, out_dir)

    run(out, body)


def _summary(out: Output, result, file: Path, out_dir: Path) -> None:
    for number, error in sorted(result.failed):
        out.error(f"{file}:{number}: {error}")
    out.notice(f"{result.completed} made, {result.skipped} already done, {len(result.failed)} failed; "
               f"manifest: {out_dir / 'manifest.jsonl'}")
    if result.failed:
        raise typer.Exit(int(ExitCode.ERROR))


def _remote_studios(servers: list[str] | None) -> list:
    from sora_cli.config import Config
    from sora_cli.remote import RemoteStudio, server_url

    config = Config.load()
    urls = [server_url(s, config) for s in servers or []] or [server_url(None, config)]
    return [RemoteStudio.connect(url, config) for url in dict.fromkeys(u for u in urls if u)]


def _run_remote(out: Output, studios: list, lines, out_dir: Path, file: Path, *, resume: bool, dry_run: bool,
                concurrency: int, retries: int) -> None:
    from sora_cli.batch import run_batch_remote

    if concurrency < 1 or retries < 0:
        raise UsageError("--concurrency must be at least 1 and --retries at least 0")
    try:
        if dry_run:  # what can be checked without the servers: fields, local-only options, inputs
            bad = 0
            for line in lines:
                error = line.error
                if error is None:
                    try:
                        studios[0].prepare(line.request.with_(output=None))
                    except SoraError as exc:
                        error = str(exc)
                bad += error is not None
                if out.json:
                    out.emit_json({"line": line.number, "ok": error is None, "error": error})
                elif error:
                    out.error(f"line {line.number}: {error}")
                else:
                    out.data(f"line {line.number}: ok")
            if bad:
                raise UsageError(f"{bad} of {len(lines)} lines are invalid")
            return
        with out.progress() as report:
            result = run_batch_remote(studios, lines, out_dir, resume=resume, concurrency=concurrency,
                                      retries=retries, report=report, on_video=lambda v: render_video(out, v))
    finally:
        for studio in studios:
            studio.close()
    _summary(out, result, file, out_dir)


def _dry_run(out: Output, studio, lines, out_dir: Path) -> None:
    from sora_cli.errors import SoraError

    bad = 0
    for line in lines:
        error = line.error
        if error is None:
            try:
                request = line.request
                name = request.output.name if request.output else "check.mp4"
                job = studio.prepare(request.with_(output=out_dir / name) if out_dir.is_dir() else
                                     request.with_(output=None))
            except SoraError as exc:
                error = str(exc)
        if error:
            bad += 1
            out.error(f"line {line.number}: {error}")
            if out.json:
                out.emit_json({"line": line.number, "ok": False, "error": error})
        elif out.json:
            out.emit_json({"line": line.number, "ok": True, **job.plan.parameters()})
        else:
            p = job.plan
            out.data(f"line {line.number}: ok · {p.model_ref} {p.size} {p.num_frames} frames @ {p.fps} fps")
    if bad:
        raise UsageError(f"{bad} of {len(lines)} lines are invalid")
