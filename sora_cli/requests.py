"""What a user asks for (requests) and what they get back (the Video record).

The Video record has the fields of OpenAI's Video object (id, object, status, progress, model,
seconds, size, prompt, remixed_from_video_id, error, created_at, completed_at, expires_at) plus ours.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from sora_cli.errors import UsageError
from sora_cli.media.inputs import FIT_MODES

OFFLOAD_MODES = ("auto", "none", "model", "group", "sequential")
MAX_PROMPT_CHARS = 10_000
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """'832x480' -> (832, 480), width first as in OpenAI's `size`."""
    match = _SIZE_RE.match(text)
    if not match:
        raise UsageError(f"size {text!r} is not WIDTHxHEIGHT, for example 832x480")
    width, height = int(match[1]), int(match[2])
    if width <= 0 or height <= 0:
        raise UsageError(f"size {text!r} must be positive")
    return width, height


def new_video_id() -> str:
    return "video_" + secrets.token_hex(12)


def random_seed() -> int:
    return secrets.randbits(32)


@dataclass(frozen=True)
class GenerateRequest:
    """Text to video. `None` means "the model family's default"; the resolved values are recorded."""

    task: ClassVar[str] = "t2v"
    command: ClassVar[str] = "generate"
    prompt_optional: ClassVar[bool] = False

    prompt: str
    model: str | None = None
    seconds: float | None = None
    fps: int | None = None
    size: str | None = None
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str | None = None
    offload: str = "auto"
    device: str | None = None
    output: Path | None = None
    visible_mark: bool = True  # the invisible mark and the C2PA manifest cannot be turned off
    include_prompt: bool = False  # put the prompt itself in the manifest (its sha256 always goes)
    audio: bool = True  # keep the sound a model makes with the video (--no-audio drops it)
    soundtrack: str | None = None  # a prompt for a generated soundtrack (for silent families)
    soundtrack_model: str | None = None
    attest_consent: bool = False  # the requester has the consent of people shown in an input photo or clip
    cameos: tuple[str, ...] = ()  # --cameo handles, besides the @handles in the prompt
    # pictures of characters that are not people (a pet, a toy, a made-up figure): reference frames, like cameos
    references: tuple[Path, ...] = ()

    def check(self) -> None:
        """Checks that need no model: the family's own rules come later, still before loading."""
        if not self.prompt.strip() and not self.prompt_optional:
            raise UsageError("the prompt is empty")
        if self.soundtrack is not None and not self.soundtrack.strip():
            raise UsageError("--soundtrack needs a prompt describing the sound")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise UsageError(f"the prompt is {len(self.prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
        if self.seconds is not None and not self.seconds > 0:
            raise UsageError(f"--seconds must be more than 0, got {self.seconds:g}")
        if self.fps is not None and not 1 <= self.fps <= 120:
            raise UsageError(f"--fps must be between 1 and 120, got {self.fps}")
        if self.steps is not None and not 1 <= self.steps <= 1000:
            raise UsageError(f"--steps must be between 1 and 1000, got {self.steps}")
        if self.guidance is not None and not 0 <= self.guidance <= 50:
            raise UsageError(f"--guidance must be between 0 and 50, got {self.guidance:g}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise UsageError(f"--seed must be a non-negative integer below 2**63, got {self.seed}")
        if self.offload not in OFFLOAD_MODES:
            raise UsageError(f"--offload must be one of {', '.join(OFFLOAD_MODES)}, got {self.offload!r}")
        if self.size is not None:
            parse_size(self.size)

    def with_(self, **changes: Any) -> GenerateRequest:
        return replace(self, **changes)

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def check_fit(fit: str) -> None:
    if fit not in FIT_MODES:
        raise UsageError(f"--fit must be one of {', '.join(FIT_MODES)}, got {fit!r}")


@dataclass(frozen=True)
class AnimateRequest(GenerateRequest):
    """Photo to video: the photo is the first frame (and `last_image` the last, where the model can)."""

    task: ClassVar[str] = "i2v"
    command: ClassVar[str] = "animate-image"

    image: Path | None = None
    last_image: Path | None = None
    fit: str = "crop"

    def check(self) -> None:
        super().check()
        if self.image is None:
            raise UsageError("animate-image needs a photo")
        check_fit(self.fit)


@dataclass(frozen=True)
class RemixRequest(GenerateRequest):
    """Video to video: the clip's motion and layout, remade to the prompt; `strength` 1.0 keeps nothing."""

    task: ClassVar[str] = "v2v"
    command: ClassVar[str] = "remix"

    video: str | None = None  # a file, a library id, or @last
    strength: float = 0.7
    fit: str = "crop"

    def check(self) -> None:
        super().check()
        if not self.video:
            raise UsageError("remix needs a video: a file, a library id or @last")
        if not 0 < self.strength <= 1:
            raise UsageError(f"--strength must be more than 0 and at most 1, got {self.strength:g}")
        check_fit(self.fit)


@dataclass(frozen=True)
class ExtendRequest(GenerateRequest):
    """Continue a clip from its last frame; `seconds` is how much to add. No prompt: the clip's own."""

    task: ClassVar[str] = "extend"
    command: ClassVar[str] = "extend"
    prompt_optional: ClassVar[bool] = True

    video: str | None = None

    def check(self) -> None:
        super().check()
        if not self.video:
            raise UsageError("extend needs a video: a file, a library id or @last")
        if self.seconds is None:
            raise UsageError("extend needs --seconds: how many seconds to add")


REQUEST_TYPES = {cls.command: cls for cls in (GenerateRequest, AnimateRequest, RemixRequest, ExtendRequest)}


@dataclass(frozen=True)
class Source:
    """An input a video was made from: recorded in the library, and a C2PA ingredient when it is a file."""

    role: str  # image | last_image | video
    path: Path
    sha256: str
    video_id: str | None = None  # when the input is a video in the library
    description: str = ""  # what part was used, at what size


@dataclass(frozen=True)
class Conditioning:
    """The decoded inputs of a task, already at the plan's size (PIL images; frames as a list of them)."""

    image: Any = None
    last_image: Any = None
    video: Any = None
    strength: float | None = None
    reference_images: tuple[Any, ...] = ()
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True)
class Plan:
    """A request resolved against a model: every value the pipeline will be called with."""

    request: GenerateRequest
    model_ref: str  # what the user named
    model_id: str  # the folder or hub id that is loaded
    family: str
    pipeline_class: str
    width: int
    height: int
    num_frames: int
    fps: int
    steps: int
    guidance: float
    seed: int
    notices: tuple[str, ...] = ()
    task: str = "t2v"
    conditioning: Conditioning | None = None
    cameos: tuple[str, ...] = ()  # bare handles of the cameos this video uses
    model_prompt: str | None = None  # the prompt the text encoder gets (@handles turned into names)

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def parameters(self) -> dict[str, Any]:
        """The resolved generation parameters, as recorded in the library and the manifest."""
        return {
            "prompt": self.request.prompt,
            "negative_prompt": self.request.negative_prompt,
            "model": self.model_ref,
            "family": self.family,
            "pipeline": self.pipeline_class,
            "size": self.size,
            "num_frames": self.num_frames,
            "fps": self.fps,
            "seconds": round(self.seconds, 3),
            "steps": self.steps,
            "guidance": self.guidance,
            "seed": self.seed,
            "task": self.task,
            **({"cameos": list(self.cameos)} if self.cameos else {}),
            **({"strength": self.conditioning.strength}
               if self.conditioning is not None and self.conditioning.strength is not None else {}),
            **({"inputs": [{"role": s.role, "file": s.path.name, "sha256": s.sha256, "video_id": s.video_id,
                            "used": s.description} for s in self.conditioning.sources]}
               if self.conditioning is not None and self.conditioning.sources else {}),
        }


@dataclass
class Video:
    id: str
    prompt: str
    model: str
    status: str = "queued"  # queued | in_progress | completed | failed | cancelled
    progress: int = 0
    created_at: int = field(default_factory=lambda: int(time.time()))
    completed_at: int | None = None
    expires_at: int | None = None
    error: dict[str, str] | None = None
    remixed_from_video_id: str | None = None
    seconds: str = ""
    size: str = ""
    # ours
    seed: int | None = None
    negative_prompt: str | None = None
    num_frames: int | None = None
    fps: int | None = None
    path: str | None = None
    thumbnail_path: str | None = None
    sha256: str | None = None
    model_hash: str | None = None
    watermark_id: str | None = None  # 16 hex digits: the invisible mark's payload and C2PA soft binding
    manifest_label: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"id": data.pop("id"), "object": "video", **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def params_key(params: dict[str, Any]) -> str:
    """A stable hash of a job's requested parameters (what `batch --resume` keys on)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
