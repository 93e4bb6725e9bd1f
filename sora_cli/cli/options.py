"""Generation options shared by `generate` and `batch` (diffusers' names where they exist)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sora_cli.cli.output import Output

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Built-in name, alias, folder or hub id.")]
SecondsOpt = Annotated[float | None, typer.Option(help="Length in seconds (rounded to the family's frame rule).")]
FpsOpt = Annotated[int | None, typer.Option(help="Frames per second.")]
SizeOpt = Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, for example 832x480.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (random when absent; always recorded).")]
StepsOpt = Annotated[int | None, typer.Option(help="Denoising steps.")]
GuidanceOpt = Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")]
NegativeOpt = Annotated[str | None, typer.Option("--negative-prompt", help="What to steer away from.")]
OffloadOpt = Annotated[str, typer.Option(help="auto|none|model|group|sequential: CPU offload for small GPUs.")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")]
VisibleMarkOpt = Annotated[bool, typer.Option(
    "--visible-mark/--no-visible-mark", help="The moving visible mark with your handle (recorded in the manifest).")]
IncludePromptOpt = Annotated[bool, typer.Option(
    "--c2pa-include-prompt", help="Put the prompt itself in the C2PA manifest (its sha256 is always there).")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Output .mp4 path.")]
AudioOpt = Annotated[bool, typer.Option(
    "--audio/--no-audio", help="Keep the sound a model makes with the video (LTX-2); --no-audio drops it.")]
SoundtrackOpt = Annotated[str | None, typer.Option(
    help="Make a soundtrack from this prompt with a text-to-audio model and add it (for silent models).")]
SoundtrackModelOpt = Annotated[str | None, typer.Option(
    help="Text-to-audio model for --soundtrack (Stable Audio or AudioLDM2; default: the soundtrack_model "
         "setting, else the built-in tiny-audio).")]
CameoOpt = Annotated[list[str] | None, typer.Option(
    "--cameo", help="Put a consented cameo in the video (repeatable, at most two; @handle in the prompt works too).")]
AttestOpt = Annotated[bool, typer.Option(
    "--attest-consent", help="The people shown in the input photo or clip consented (recorded in the manifest).")]
ServerOpt = Annotated[str | None, typer.Option(
    "--server", envvar="SORA_SERVER", show_envvar=False,
    help="Run on a `sora serve` (or any /v1/videos) server at this URL; also $SORA_SERVER or the server setting. "
         "Key: `sora login`.")]
FitOpt = Annotated[str, typer.Option(
    help="How the input meets the video size: crop (fill, cut the edges), pad (fit, black bars) or stretch.")]


def open_studio(out: Output, source: str = "cli"):
    """The core object for one command; plugin failures are warnings, not crashes."""
    from sora_cli.produce import Studio

    studio = Studio(source=source)
    for warning in studio.registry.warnings:
        out.warn(warning)
    return studio


def open_remote(server: str | None):
    """The RemoteStudio for --server / $SORA_SERVER / the `server` setting, or None for a local run."""
    from sora_cli.config import Config
    from sora_cli.remote import RemoteStudio, server_url

    config = Config.load()
    url = server_url(server, config)
    return RemoteStudio.connect(url, config) if url else None


def make_video(out: Output, request, server: str | None = None) -> None:
    """The one flow of every making command: prepare (all checks), say the plan, run with progress, render."""
    remote = open_remote(server)
    if remote is not None:
        try:
            job = remote.prepare(request)
            for notice in job.notices:
                out.notice(notice)
            out.notice(f"seed {job.seed} · on {remote.url}")
            with out.progress() as report:
                video = remote.run(job, report)
            render_video(out, video)
        finally:
            remote.close()
        return
    studio = open_studio(out)
    try:
        job = studio.prepare(request)
        for notice in job.plan.notices:
            out.notice(notice)
        out.notice(f"seed {job.plan.seed}")
        with out.progress() as report:
            video = studio.run(job, report)
        for notice in video.parameters.get("notices", [])[len(job.plan.notices):]:
            out.notice(notice)
        render_video(out, video)
    finally:
        studio.close()


def render_video(out: Output, video) -> None:
    if out.json:
        out.emit_json(video.to_dict())
        return
    out.data(video.path)
    lineage = f" · from {video.remixed_from_video_id}" if video.remixed_from_video_id else ""
    origin = video.parameters.get("remote")
    if origin:
        out.notice(f"{video.id} · seed {video.seed} · {video.num_frames} frames {video.size} @ {video.fps} fps "
                   f"({video.seconds} s) · made on {origin['server']}, C2PA {video.parameters.get('provenance')} "
                   f"· {sum(video.timings.values()):.1f} s{lineage}")
        return
    out.notice(f"{video.id} · seed {video.seed} · {video.num_frames} frames {video.size} @ {video.fps} fps "
               f"({video.seconds} s) · {video.timings.get('total', 0):.1f} s{lineage}")
