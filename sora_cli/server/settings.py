"""What a server instance is allowed to do and where it keeps its state; read once at start-up."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from sora_cli.config import Paths
from sora_cli.requests import MAX_PROMPT_CHARS

MB = 1 << 20


@dataclass(frozen=True)
class ServerSettings:
    paths: Paths
    model: str | None = None  # the server's default model (`sora serve --model`); None: the per-task default
    devices: tuple[str | None, ...] = (None,)  # one worker per entry; None lets the engine pick (CPU mode)
    max_queue: int = 64  # queued + running jobs before a create is answered 429
    max_upload_bytes: int = 50 * MB
    max_prompt_chars: int = MAX_PROMPT_CHARS
    max_seconds: float = 20.0  # per request; an extension adds at most this much
    max_side: int = 1920  # pixels, either side
    max_steps: int = 100
    poll_after_ms: int = 1000  # the `openai-poll-after-ms` header on unfinished videos
    max_attempts: int = 2  # a job interrupted by a restart this many times is failed, not re-queued
    webhook_timeout: float = 10.0
    webhook_backoff: tuple[float, ...] = (1, 5, 30, 120, 600)  # seconds between delivery attempts
    # webhooks to loopback, private, link-local (cloud metadata) or reserved addresses are refused unless the
    # admin allows them: a user's webhook must not become a way to reach what only the server can reach
    webhook_allow_private: bool = False
    image_types: tuple[str, ...] = ("image/jpeg", "image/png", "image/webp")
    video_types: tuple[str, ...] = ("video/mp4", "video/quicktime", "video/webm")

    @property
    def root(self) -> Path:
        return self.paths.data_dir / "server"

    @property
    def db_path(self) -> Path:
        return self.root / "server.db"

    @property
    def media_dir(self) -> Path:
        return self.root / "media"

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    def to_json(self) -> str:
        """For the worker processes, which read the same settings."""
        data = asdict(self)
        data["paths"] = {k: str(v) for k, v in data["paths"].items()}
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ServerSettings:
        data = json.loads(text)
        data["paths"] = Paths(**{k: Path(v) for k, v in data["paths"].items()})
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def make_dirs(self) -> None:
        for folder in (self.root, self.media_dir, self.uploads_dir, self.paths.thumbnails_dir):
            folder.mkdir(parents=True, exist_ok=True)
