"""The photos and clips a task starts from: found (a file, a library id, @last), decoded, fitted to the plan.

All of it happens before a model loads, so a bad input costs nothing: it is an InputError naming the file.
Lineage starts here too: a clip that is (a copy of) a library video names that video as its parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sora_cli.engines import Clip
from sora_cli.errors import InputError, UsageError
from sora_cli.library import Library
from sora_cli.models import ModelInfo
from sora_cli.requests import (
    AnimateRequest,
    Conditioning,
    ExtendRequest,
    GenerateRequest,
    Plan,
    RemixRequest,
    Source,
    Video,
    parse_size,
)

MAX_EXTENDED_SECONDS = 60.0  # an extended clip (the original and every extension) is at most this long


@dataclass(frozen=True)
class Inputs:
    """What a request's inputs said, before the plan fixes the size they are fitted to."""

    request: GenerateRequest  # with the defaults the inputs imply (orientation, length, frame rate, prompt)
    images: dict[str, Any] = field(default_factory=dict)  # role -> PIL image, as read
    clip: Any = None  # media.inputs.VideoInput: the part of a clip a remix uses, or the clip an extend continues
    parent: Video | None = None  # the library video a remix or an extension comes from
    sources: tuple[Source, ...] = ()
    notices: tuple[str, ...] = ()
    size: tuple[int, int] | None = None  # extend: the clip's own size, where generation runs at another


def find_video(ref: str, library: Library) -> tuple[Path, Video | None]:
    """A file path, a library id (or prefix), or @last -> the file and its library row, if it has one."""
    from sora_cli.media.encode import sha256_file

    if ref == "@last":
        latest = next(iter(library.list(limit=1, status="completed")), None)
        if latest is None:
            raise UsageError("no completed video in the library for @last")
        return _library_file(latest), latest
    if ref.startswith("feed:"):
        raise UsageError(f"{ref} is a video on a server's feed: add --server URL")
    path = Path(ref).expanduser()
    if path.exists():
        if path.is_dir():
            raise InputError(f"{path} is a folder, not a video file")
        return path, library.by_sha256(sha256_file(path))
    if "/" in ref or path.suffix:
        raise InputError(f"{path}: no such file")
    try:
        video = library.get(ref)
    except UsageError:
        raise InputError(f"{ref!r} is neither a file nor a video in the library") from None
    return _library_file(video), video


def _library_file(video: Video) -> Path:
    if video.status != "completed" or not video.path:
        raise InputError(f"{video.id} is {video.status}: it has no video file")
    path = Path(video.path)
    if not path.is_file():
        raise InputError(f"the file of {video.id} is gone: {path}")
    return path


def gather(request: GenerateRequest, model: ModelInfo, library: Library) -> Inputs:
    """Read the request's photo or clip and take the defaults they imply."""
    if isinstance(request, AnimateRequest):
        return _photos(request, model)
    if isinstance(request, RemixRequest):
        return _remix(request, model, library)
    if isinstance(request, ExtendRequest):
        return _extend(request, model, library)
    return Inputs(request=request)


def _source(role: str, path: Path, video: Video | None = None, description: str = "") -> Source:
    from sora_cli.media.encode import sha256_file

    return Source(role=role, path=path, sha256=sha256_file(path), video_id=video.id if video else None,
                  description=description)


def _photos(request: AnimateRequest, model: ModelInfo) -> Inputs:
    from sora_cli.media.inputs import load_image

    assert request.image is not None
    pipeline = model.family.pipeline_for(model.class_name, "i2v")
    folder = Path(model.location) if model.source != "hub" else None
    support = model.family.last_image_support(pipeline, folder)
    if request.last_image is not None and support == "no":
        raise UsageError(f"--last-image needs a first-and-last-frame model; {model.ref} ({pipeline}) takes only "
                         f"a first frame (tiny-i2v, Wan 2.2 I2V and Wan FLF2V checkpoints take a last one)")
    if request.last_image is None and support == "required":
        raise UsageError(f"{model.ref} is a first-and-last-frame model: give --last-image too")
    images = {"image": load_image(request.image)}
    if request.last_image is not None:
        images["last_image"] = load_image(request.last_image)
    width, height = images["image"].size
    request, notices = _orient(request, model, width, height, "photo")
    sources = tuple(_source(role, getattr(request, role), description=f"{img.size[0]}x{img.size[1]} photo, "
                            f"fit by {request.fit}") for role, img in images.items())
    return Inputs(request=request, images=images, sources=sources, notices=notices)


def _remix(request: RemixRequest, model: ModelInfo, library: Library) -> Inputs:
    from sora_cli.media.inputs import read_video

    assert request.video is not None
    path, parent = find_video(request.video, library)
    fps = request.fps or model.defaults.fps
    limit = request.seconds or model.defaults.seconds
    # a few frames more than asked, so the family's frame rule can round up without running out
    clip = read_video(path, fps=fps, max_seconds=limit + model.family.frame_step / fps)
    # the remix is as long as the part of the clip it remakes (at most --seconds or the model's default)
    request = replace(request, fps=fps, seconds=min(limit, len(clip.frames) / fps))
    request, notices = _orient(request, model, clip.width, clip.height, "clip")
    return Inputs(request=request, clip=clip, parent=parent, sources=(_source("video", path, parent),),
                  notices=(f"remixing: {clip.describe()}", *notices))


def _extend(request: ExtendRequest, model: ModelInfo, library: Library) -> Inputs:
    from sora_cli.media.inputs import read_video

    assert request.video is not None and request.seconds is not None
    path, parent = find_video(request.video, library)
    clip = read_video(path, fps=request.fps)
    if clip.fps != round(clip.fps):  # 29.97 and friends: continue at a whole frame rate
        clip = read_video(path, fps=round(clip.fps))
    fps = round(clip.fps)
    total = len(clip.frames) / fps + request.seconds
    if total > MAX_EXTENDED_SECONDS:
        raise UsageError(f"an extended clip may be at most {MAX_EXTENDED_SECONDS:g} s: this one is "
                         f"{len(clip.frames) / fps:.2f} s, adding {request.seconds:g} s makes {total:.2f} s")
    prompt = request.prompt
    notices: list[str] = []
    if not prompt.strip():
        if parent is None or not parent.prompt:
            raise UsageError("give a prompt for the extension (the clip is not in the library to reuse its own)")
        prompt = parent.prompt
        notices.append(f"continuing with the clip's own prompt: {prompt[:60]!r}")
    multiple = model.family.size_multiple
    gen_w, gen_h = (parse_size(request.size) if request.size
                    else (max(multiple, round(clip.width / multiple) * multiple),
                          max(multiple, round(clip.height / multiple) * multiple)))
    size = None
    if (gen_w, gen_h) != (clip.width, clip.height):
        size = (clip.width, clip.height)
        notices.append(f"{model.family.label} needs sizes divisible by {multiple}: generating at {gen_w}x{gen_h} "
                       f"and scaling the new part to the clip's {clip.width}x{clip.height}")
    if clip.has_audio:
        notices.append("the clip's sound track is not carried over into the extended clip")
    request = replace(request, prompt=prompt, fps=fps, size=f"{gen_w}x{gen_h}")
    source = _source("video", path, parent, clip.describe())
    return Inputs(request=request, clip=clip, parent=parent, sources=(source,), notices=tuple(notices), size=size)


def _orient(request: Any, model: ModelInfo, width: int, height: int, what: str) -> tuple[Any, tuple[str, ...]]:
    """With no --size, a portrait input makes a portrait video: the model's default size, turned."""
    if request.size is not None:
        return request, ()
    default_w, default_h = parse_size(model.defaults.size)
    if width == height or default_w == default_h or (width > height) == (default_w > default_h):
        return request, ()
    size = f"{default_h}x{default_w}"
    orientation = "portrait" if height > width else "landscape"
    return replace(request, size=size), (f"{orientation} {what}: making {size} (--size to choose)",)


def conditioning(inputs: Inputs, plan: Plan) -> Conditioning:
    """The inputs fitted to the plan's size, as the pipelines take them."""
    from PIL import Image

    from sora_cli.media.inputs import fit_frames, fit_image

    request, size = inputs.request, (plan.width, plan.height)
    if isinstance(request, AnimateRequest):
        fitted = {role: fit_image(img, *size, mode=request.fit) for role, img in inputs.images.items()}
        return Conditioning(image=fitted["image"], last_image=fitted.get("last_image"), sources=inputs.sources)
    if isinstance(request, RemixRequest):
        clip, wanted = inputs.clip, plan.num_frames
        frames = clip.frames[:wanted]
        used = (f"{len(frames)} frames ({len(frames) / clip.fps:.2f} s at {clip.fps:g} fps) from {clip.start:.2f} s "
                f"of a {clip.duration:.2f} s clip")
        if len(frames) < wanted:  # the family's frame rule rounded up past the clip's end
            import numpy as np

            frames = np.concatenate([frames, np.repeat(frames[-1:], wanted - len(frames), axis=0)])
            used += f", the last repeated to make {wanted}"
        frames = fit_frames(frames, *size, mode=request.fit)
        source = replace(inputs.sources[0], description=f"{used}, fit by {request.fit}")
        return Conditioning(video=[Image.fromarray(f) for f in frames], strength=request.strength, sources=(source,))
    if isinstance(request, ExtendRequest):
        last = Image.fromarray(inputs.clip.frames[-1])
        return Conditioning(image=fit_image(last, *size, mode="stretch"), sources=inputs.sources)
    return Conditioning(sources=inputs.sources)


def join(inputs: Inputs, clip: Clip) -> Clip:
    """An extension: the clip, then the new frames after the one that repeats its last frame."""
    import numpy as np

    from sora_cli.media.inputs import fit_frames

    new = clip.frames[1:]
    if inputs.size is not None:
        new = fit_frames(new, *inputs.size, mode="stretch")
    base = inputs.clip.frames
    audio = clip.audio
    if audio is not None and clip.sample_rate:  # the model's sound covers the new part: silence before it
        audio = np.asarray(audio)[..., round(clip.sample_rate / clip.fps):]  # as the repeated frame goes
        lead = round(len(base) / clip.fps * clip.sample_rate)
        audio = np.concatenate([np.zeros((*audio.shape[:-1], lead), audio.dtype), audio], axis=-1)
    return replace(clip, frames=np.concatenate([base, new]), audio=audio)
