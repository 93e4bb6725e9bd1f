"""A create, remix, edit or extension becomes a GenerateRequest, checked by `Studio.prepare`, then a queued job.

Everything that can be refused is refused here, before the job exists: a bad size or model is a 400 and a
full queue a 429, and a refused request leaves nothing behind (an upload written for the check is removed).
"""

from __future__ import annotations

import json
import math
import mimetypes
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sora_cli.config import Config
from sora_cli.engines import MODEL_LOADING
from sora_cli.errors import InputError, ModelError, PolicyRefusal, SoraError
from sora_cli.models import peek_model
from sora_cli.plugins import Registry
from sora_cli.produce import Studio
from sora_cli.requests import REQUEST_TYPES
from sora_cli.server.cameos import server_cameo_book
from sora_cli.server.schemas import ApiError, Params, not_found
from sora_cli.server.settings import ServerSettings
from sora_cli.server.store import Store, new_id

TASKS = {"generate": "t2v", "animate-image": "i2v", "remix": "v2v", "extend": "extend"}
STORED = ("prompt", "model", "seconds", "size", "seed", "negative_prompt", "steps", "fps", "guidance", "image", "video",
          "strength", "references")


def build_request(kind: str, fields: dict[str, Any], output: Path, device: str | None = None):
    """The request a job stands for; the same call at admission and in the worker."""
    values = {k: v for k, v in fields.items() if k in STORED and (v is not None or k == "model")}
    if "image" in values:
        values["image"] = Path(values["image"])
    if "references" in values:
        values["references"] = tuple(Path(p) for p in values["references"])
    return REQUEST_TYPES[kind](output=output, device=device, **values)


@dataclass(frozen=True)
class Upload:
    """A file sent with the request (multipart part, data URL or Files API file)."""

    content_type: str
    data: bytes | None = None  # bytes to store for this job...
    path: Path | None = None  # ...or a stored Files API file it reads in place


class Admission:
    def __init__(self, settings: ServerSettings, store: Store, config: Config, registry: Registry):
        self.settings, self.store, self.config, self.registry = settings, store, config, registry
        self._tasks_of: dict[str, tuple[str, ...]] = {}
        self._prepared: set[tuple] = set()  # (kind, model) checked once: its built-in model exists now
        self._studios: dict[str, Studio] = {}
        self._lock = threading.Lock()

    def studio(self, user: dict) -> Studio:
        """A checking Studio per user: the safety checks (prompt rules, cameo permissions, faces in inputs) are
        the requester's, and a Studio's Guard holds one requester."""
        with self._lock:
            if user["name"] not in self._studios:
                studio = Studio(self.config, self.registry, source="server", user=user["name"])
                studio.guard.start_loading = lambda: None  # the workers load the moderation model, not the API
                studio.guard.use_book(server_cameo_book(self.config.paths, self.store))
                self._studios[user["name"]] = studio
            return self._studios[user["name"]]

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue's length times the recent average job time."""
        per_job = self.store.average_seconds() or 30.0
        workers = max(1, len(self.settings.devices))  # none (a paused server): as if one
        waiting = max(1, self.store.active_count() - workers + 1)
        return max(1, math.ceil(per_job * waiting / workers))

    def _queue_full(self) -> ApiError:
        return ApiError(429, f"the queue is full ({self.settings.max_queue} jobs); retry later", code="queue_full",
                        headers={"Retry-After": str(self.retry_after())})

    def _model_for(self, params: Params, kind: str) -> str | None:
        """The client's model, else the server's --model where it can do the task, else the task's default."""
        if params.model or not self.settings.model:
            return params.model
        ref = self.settings.model
        if ref not in self._tasks_of:
            self._tasks_of[ref] = peek_model(ref, self.config, self.registry).tasks
        return ref if TASKS[kind] in self._tasks_of[ref] else None

    def parent(self, user: dict, video_id: str) -> dict:
        """The user's own completed video, or one another user published to the feed (any other video of
        theirs is as unknown as a missing one: 404). The new job is the requester's either way."""
        job = self.store.job(video_id, user["id"])
        if job is None and self.store.feed_item(video_id, user["id"]) is not None:
            job = self.store.job(video_id)
        if job is None:
            raise not_found("video", video_id)
        if job["status"] != "completed" or not job["library_id"]:
            raise ApiError(409, f"video {video_id} is {job['status']}; only a completed video can be used",
                           code="invalid_state")
        return job

    def admit(self, user: dict, kind: str, params: Params, *, upload: Upload | None = None,
              upload_param: str | None = None, parent: dict | None = None) -> dict:
        """Check a request the way a local one is checked, then queue it; returns the job row."""
        if self.store.active_count() >= self.settings.max_queue:
            raise self._queue_full()  # before anything is written
        job_id = new_id("video_")
        fields: dict[str, Any] = {k: v for k, v in asdict(params).items() if v is not None}
        fields["prompt"] = fields.get("prompt") or ""
        fields["model"] = self._model_for(params, kind)
        input_path = None
        if parent is not None:
            fields["video"] = parent["library_id"]
            if kind == "remix":  # a remix keeps what the original had unless told otherwise
                record = json.loads(parent["record"])
                fields.setdefault("size", parent["size"])
                fields.setdefault("fps", record.get("fps"))
                fields.setdefault("seconds", float(parent["seconds"]))
                fields.setdefault("steps", record.get("parameters", {}).get("steps"))
        self._characters(user, fields, params)
        if upload is not None:
            input_path = self._store_upload(job_id, upload) if upload.data is not None else upload.path
            fields["image" if kind == "animate-image" else "video"] = str(input_path)
        try:
            job = self._prepare(self.studio(user), kind, job_id, fields, upload_param)
            row = self._row(user, kind, job_id, job, parent, input_path if upload and upload.data else None)
            if not self.store.add_job(row, self.settings.max_queue):
                raise self._queue_full()
        except BaseException:
            if upload is not None and upload.data is not None and input_path is not None:
                input_path.unlink(missing_ok=True)
            raise
        return self.store.job(job_id) or row

    def _characters(self, user: dict, fields: dict[str, Any], params: Params) -> None:
        """@name of one of the user's characters: its pictures become reference frames (a VACE model by default)."""
        from sora_cli.server.characters import resolve

        if "@" not in fields["prompt"]:
            return
        characters = self.store.files(user["id"], "character")
        prompt, pictures, _ids = resolve(fields["prompt"], characters) if characters else (None, (), ())
        if pictures:
            fields.update(prompt=prompt, references=[str(p) for p in pictures])
            if not params.model:
                fields["model"] = None  # the server's --model may not take reference frames; the default does

    def _store_upload(self, job_id: str, upload: Upload) -> Path:
        from sora_cli.media.encode import write_bytes

        suffix = mimetypes.guess_extension(upload.content_type) or ".bin"
        path = self.settings.uploads_dir / f"{job_id}{suffix}"
        write_bytes(upload.data or b"", path)
        return path

    def _prepare(self, studio: Studio, kind: str, job_id: str, fields: dict[str, Any], upload_param: str | None):
        request = build_request(kind, fields, self.settings.media_dir / f"{job_id}.mp4")
        try:
            if (kind, request.model) in self._prepared:
                return studio.prepare(request)
            # the first check of a (task, model) may build a built-in model: builds take turns with any
            # model load in this process (diffusers' lazy imports and meta-device loading are not thread-safe)
            with MODEL_LOADING:
                job = studio.prepare(request)
            self._prepared.add((kind, request.model))
            return job
        except PolicyRefusal as exc:
            raise ApiError(400, str(exc), code="moderation_blocked", param="prompt") from None
        except ModelError as exc:
            raise ApiError(400, str(exc), code="model_not_found", param="model") from None
        except InputError as exc:
            raise ApiError(400, str(exc), code="invalid_input", param=upload_param) from None
        except SoraError as exc:
            message = str(exc)
            param = "size" if "size" in message else "seconds" if "seconds" in message else None
            raise ApiError(400, message, code="invalid_value", param=param) from None

    def _row(self, user: dict, kind: str, job_id: str, job: Any, parent: dict | None, input_path: Path | None) -> dict:
        plan = job.plan
        request = {k: v for k, v in asdict(plan.request).items() if k in STORED and v is not None}
        request = {**request, "seed": plan.seed, "model": plan.model_ref}  # a re-run after a restart is the same
        record = {"seed": plan.seed, "negative_prompt": plan.request.negative_prompt, "num_frames": plan.num_frames,
                  "fps": plan.fps, "notices": list(plan.notices),
                  "parameters": {k: v for k, v in plan.parameters().items() if k != "inputs"}}
        return {
            "id": job_id, "user_id": user["id"], "kind": kind, "status": "queued", "progress": 0,
            "request": json.dumps(request, default=str), "model": plan.model_ref, "prompt": plan.request.prompt,
            "seconds": f"{plan.seconds:g}", "size": plan.size, "seed": plan.seed,
            "remixed_from": parent["id"] if parent else None, "input_path": str(input_path) if input_path else None,
            "record": json.dumps(record), "created_at": int(time.time()),
        }
