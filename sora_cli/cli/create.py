"""`sora animate-image`, `sora remix`, `sora extend`: videos made from a photo or from another clip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sora_cli.cli.options import (
    AttestOpt,
    AudioOpt,
    CameoOpt,
    DeviceOpt,
    FitOpt,
    FpsOpt,
    GuidanceOpt,
    IncludePromptOpt,
    ModelOpt,
    NegativeOpt,
    OffloadOpt,
    OutputOpt,
    SecondsOpt,
    SeedOpt,
    ServerOpt,
    SizeOpt,
    SoundtrackModelOpt,
    SoundtrackOpt,
    StepsOpt,
    VisibleMarkOpt,
    make_video,
)
from sora_cli.cli.output import DebugOpt, EventsOpt, JsonOpt, Output, QuietOpt, run

VideoArg = Annotated[str, typer.Argument(help="A video file, a library id (or its start), or @last.")]


def animate_image(
    photo: Annotated[Path, typer.Argument(help="The photo: the video's first frame.")],
    prompt: Annotated[str, typer.Argument(help="What happens in the video.")],
    last_image: Annotated[Path | None, typer.Option(
        help="A photo for the last frame (first-and-last-frame models such as Wan I2V).")] = None,
    fit: FitOpt = "crop",
    cameo: CameoOpt = None,
    output: OutputOpt = None, model: ModelOpt = None, seconds: SecondsOpt = None, fps: FpsOpt = None,
    size: SizeOpt = None, seed: SeedOpt = None, steps: StepsOpt = None, guidance: GuidanceOpt = None,
    negative_prompt: NegativeOpt = None, offload: OffloadOpt = "auto", device: DeviceOpt = None,
    visible_mark: VisibleMarkOpt = True, c2pa_include_prompt: IncludePromptOpt = False, audio: AudioOpt = True,
    soundtrack: SoundtrackOpt = None, soundtrack_model: SoundtrackModelOpt = None, attest_consent: AttestOpt = False,
    server: ServerOpt = None,
    json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False, events: EventsOpt = False,
) -> None:
    """Bring a photo to life: a video that starts from it."""
    out = Output(json=json_, quiet=quiet, debug=debug, events=events)

    def body() -> None:
        from sora_cli.requests import AnimateRequest

        make_video(out, AnimateRequest(
            prompt=prompt, image=photo, last_image=last_image, fit=fit, model=model, seconds=seconds, fps=fps,
            size=size, seed=seed, steps=steps, guidance=guidance, negative_prompt=negative_prompt,
            offload=offload, device=device, output=output, visible_mark=visible_mark,
            include_prompt=c2pa_include_prompt, audio=audio, soundtrack=soundtrack, soundtrack_model=soundtrack_model,
            attest_consent=attest_consent, cameos=tuple(cameo or ()),
        ), server)

    run(out, body)


def remix(
    video: VideoArg,
    prompt: Annotated[str, typer.Argument(help="What to change: the setting, the style, a character.")],
    strength: Annotated[float, typer.Option(
        help="How much to change, above 0 to 1: low keeps the clip's look, 1 keeps only its motion.")] = 0.7,
    fit: FitOpt = "crop",
    cameo: CameoOpt = None,
    output: OutputOpt = None, model: ModelOpt = None, seconds: SecondsOpt = None, fps: FpsOpt = None,
    size: SizeOpt = None, seed: SeedOpt = None, steps: StepsOpt = None, guidance: GuidanceOpt = None,
    negative_prompt: NegativeOpt = None, offload: OffloadOpt = "auto", device: DeviceOpt = None,
    visible_mark: VisibleMarkOpt = True, c2pa_include_prompt: IncludePromptOpt = False, audio: AudioOpt = True,
    soundtrack: SoundtrackOpt = None, soundtrack_model: SoundtrackModelOpt = None, attest_consent: AttestOpt = False,
    server: ServerOpt = None,
    json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False, events: EventsOpt = False,
) -> None:
    """Remake a clip to a new prompt, keeping its motion; the new video names it as its parent."""
    out = Output(json=json_, quiet=quiet, debug=debug, events=events)

    def body() -> None:
        from sora_cli.requests import RemixRequest

        make_video(out, RemixRequest(
            prompt=prompt, video=video, strength=strength, fit=fit, model=model, seconds=seconds, fps=fps,
            size=size, seed=seed, steps=steps, guidance=guidance, negative_prompt=negative_prompt,
            offload=offload, device=device, output=output, visible_mark=visible_mark,
            include_prompt=c2pa_include_prompt, audio=audio, soundtrack=soundtrack, soundtrack_model=soundtrack_model,
            attest_consent=attest_consent, cameos=tuple(cameo or ()),
        ), server)

    run(out, body)


def extend(
    video: VideoArg,
    prompt: Annotated[str, typer.Argument(help="What happens next (default: the clip's own prompt).")] = "",
    seconds: Annotated[float | None, typer.Option(help="Seconds to add (the whole clip is at most 60 s).")] = None,
    output: OutputOpt = None, model: ModelOpt = None, fps: FpsOpt = None, size: SizeOpt = None,
    seed: SeedOpt = None, steps: StepsOpt = None, guidance: GuidanceOpt = None,
    negative_prompt: NegativeOpt = None, offload: OffloadOpt = "auto", device: DeviceOpt = None,
    visible_mark: VisibleMarkOpt = True, c2pa_include_prompt: IncludePromptOpt = False, audio: AudioOpt = True,
    soundtrack: SoundtrackOpt = None, soundtrack_model: SoundtrackModelOpt = None, attest_consent: AttestOpt = False,
    server: ServerOpt = None,
    json_: JsonOpt = False, quiet: QuietOpt = False, debug: DebugOpt = False, events: EventsOpt = False,
) -> None:
    """Continue a clip from its last frame and join the two into one longer video."""
    out = Output(json=json_, quiet=quiet, debug=debug, events=events)

    def body() -> None:
        from sora_cli.requests import ExtendRequest

        make_video(out, ExtendRequest(
            prompt=prompt, video=video, model=model, seconds=seconds, fps=fps, size=size, seed=seed, steps=steps,
            guidance=guidance, negative_prompt=negative_prompt, offload=offload, device=device, output=output,
            visible_mark=visible_mark, include_prompt=c2pa_include_prompt, audio=audio, soundtrack=soundtrack,
            soundtrack_model=soundtrack_model, attest_consent=attest_consent,
        ), server)

    run(out, body)
