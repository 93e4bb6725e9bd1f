"""`sora generate`: text to video."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sora_cli.cli.options import (
    AudioOpt,
    CameoOpt,
    DeviceOpt,
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
from sora_cli.errors import UsageError


def read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    if prompt_file is not None:
        if prompt is not None:
            raise UsageError("give the prompt as an argument or with --prompt-file, not both")
        try:
            return prompt_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read --prompt-file {prompt_file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--prompt-file {prompt_file} is not UTF-8 text") from None
    if prompt == "-":
        return sys.stdin.read().strip()
    if prompt is None:
        raise UsageError("no prompt: give one as an argument, '-' for stdin, or --prompt-file")
    return prompt


def generate(
    prompt: Annotated[str | None, typer.Argument(help="What happens in the video ('-' reads stdin).")] = None,
    output: OutputOpt = None,
    model: ModelOpt = None,
    seconds: SecondsOpt = None,
    fps: FpsOpt = None,
    size: SizeOpt = None,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    negative_prompt: NegativeOpt = None,
    offload: OffloadOpt = "auto",
    device: DeviceOpt = None,
    visible_mark: VisibleMarkOpt = True,
    c2pa_include_prompt: IncludePromptOpt = False,
    audio: AudioOpt = True,
    soundtrack: SoundtrackOpt = None,
    soundtrack_model: SoundtrackModelOpt = None,
    cameo: CameoOpt = None,
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from a file.")] = None,
    server: ServerOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    events: EventsOpt = False,
) -> None:
    """Turn a text prompt into a video."""
    out = Output(json=json_, quiet=quiet, debug=debug, events=events)

    def body() -> None:
        from sora_cli.requests import GenerateRequest

        request = GenerateRequest(
            prompt=read_prompt(prompt, prompt_file), model=model, seconds=seconds, fps=fps, size=size,
            seed=seed, steps=steps, guidance=guidance, negative_prompt=negative_prompt, offload=offload,
            device=device, output=output, visible_mark=visible_mark, include_prompt=c2pa_include_prompt,
            audio=audio, soundtrack=soundtrack, soundtrack_model=soundtrack_model, cameos=tuple(cameo or ()),
        )
        make_video(out, request, server)

    run(out, body)
