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
from typing import Any

from sora_cli.errors import UsageError

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

    def check(self) -> None:
        """Checks that need no model: the family's own rules come later, still before loading."""
        if not self.prompt or not self.prompt.strip():
            raise UsageError("the prompt is empty")
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
