"""A worker process: one per device, owning one Studio, so its pipeline stays warm across jobs.

A process, not a thread: generation is CPU-heavy Python (the GIL) and would otherwise slow every poll
the API answers. Workers and the API share nothing but the SQLite queue: a worker claims a job with one
atomic UPDATE, writes progress to its row, reads its cancel flag at every progress event (a Cancelled raised
from the Reporter: Studio marks its library row cancelled), and re-queues it when told to stop. A job takes
exactly the local path (`Studio.prepare`, then `Studio.run`): moderation, consent, marks, C2PA, library.
Every write is guarded by the job's attempt number, so a worker outlived by a restart changes nothing.

    python -m sora_cli.server.worker SETTINGS_JSON DEVICE PARENT_PID     (started by pool.WorkerPool)
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sora_cli.config import Config
from sora_cli.engines import ProgressEvent
from sora_cli.errors import Cancelled, PolicyRefusal, SoraError
from sora_cli.library import Library
from sora_cli.produce import Studio
from sora_cli.requests import Video
from sora_cli.server.admission import build_request
from sora_cli.server.cameos import server_cameo_book
from sora_cli.server.settings import ServerSettings
from sora_cli.server.store import Store

log = logging.getLogger("sora_cli.server.worker")
# where each phase puts the progress bar; denoising fills the space between 5 and 90
PHASES = {"load": 2, "decode": 92, "soundtrack": 94, "encode": 96, "done": 99}
PUBLIC_RECORD_SKIP = {"id", "object", "status", "progress", "created_at", "completed_at", "expires_at", "error",
                      "prompt", "model", "remixed_from_video_id", "seconds", "size", "path", "thumbnail_path"}


class Shutdown(Cancelled):
    """The server is stopping (or gone): the job goes back to the queue instead of failing."""


def thumbnail_path(settings: ServerSettings, job: dict) -> Path:
    return settings.paths.thumbnails_dir / f"{job['library_id']}.jpg"


def spritesheet_path(settings: ServerSettings, job_id: str) -> Path:
    return settings.media_dir / f"{job_id}.sprite.jpg"


def settle(store: Store, job_id: str, on_finish: Callable[[dict], None]) -> None:
    """After a job ends (any way): drop the upload that was its own, tell the webhooks."""
    job = store.job(job_id)
    if job is None:
        return
    if job["input_path"]:
        Path(job["input_path"]).unlink(missing_ok=True)
    on_finish(job)


class _JobLibrary(Library):
    """The library, telling the worker the id of the row a run opens (so a restart can close it)."""

    on_open: Callable[[Video], None] | None = None

    def save(self, video: Video) -> None:
        super().save(video)
        if video.status == "in_progress" and self.on_open is not None:
            self.on_open(video)


class _WorkerStudio(Studio):
    @property
    def library(self) -> _JobLibrary:
        if self._library is None:
            self._library = _JobLibrary(self.config.paths.library_db)
        return self._library  # type: ignore[return-value]


class Worker:
    def __init__(self, settings: ServerSettings, device: str | None, parent: int | None = None):
        from sora_cli.plugins import load_registry
        from sora_cli.server.webhooks import enqueue

        self.settings, self.device, self.parent = settings, device, parent
        self.store = Store(settings.db_path)
        self.config = Config.load(settings.paths)
        self.studio = _WorkerStudio(self.config, load_registry(), source="server")
        self.studio.guard.use_book(server_cameo_book(self.config.paths, self.store))
        self.on_finish = lambda job: enqueue(self.store, job)
        self.stop = threading.Event()
        self.wake = threading.Event()

    def stopping(self) -> bool:
        return self.stop.is_set() or (self.parent is not None and os.getppid() != self.parent)

    def run(self) -> None:
        self._warm()
        try:
            while not self.stopping():
                job = self.store.claim(os.getpid()) if self.store.has_queued() else None
                if job is None:
                    self.wake.wait(0.5)
                    self.wake.clear()
                    continue
                self._run(job)
        finally:
            self.studio.close()

    def _warm(self) -> None:
        """Load the default model, the moderation models and the signing identity before the first job."""
        from sora_cli.models import default_model, resolve_model

        try:
            self.studio.guard.start_loading()  # in the background, taking turns with the pipeline's load
            self.studio.identity  # noqa: B018 - made on first use: keys and a certificate
            ref = self.settings.model or default_model("t2v", self.config)
            self.studio.engine(resolve_model(ref, self.config, self.studio.registry), self.device, "auto",
                               lambda event: None)
        except Exception as exc:  # the jobs will meet the same problem, where a client sees it
            log.warning("warm-up failed: %s", exc)

    def _reporter(self, job: dict) -> Callable[[ProgressEvent], None]:
        last = [-1]

        def report(event: ProgressEvent) -> None:
            if self.stopping():
                raise Shutdown("the server is stopping")
            if self.store.cancel_requested(job["id"]):
                raise Cancelled("cancelled by the client")
            if event.phase == "denoise" and event.step and event.total:
                progress = 5 + round(85 * event.step / event.total)
            else:
                progress = PHASES.get(event.phase, last[0])
            if progress > last[0]:
                last[0] = progress
                self.store.update(job["id"], "in_progress", job["attempts"], progress=progress)

        return report

    def _as(self, job: dict) -> None:
        """The safety checks and cameo uses of this job are its requester's (the Guard keeps its loaded models)."""
        owner = self.store.user(job["user_id"])
        guard = self.studio.guard
        guard.user = owner["name"] if owner else None
        guard.context = replace(guard.context, user=guard.user)

    def _run(self, job: dict) -> None:
        job_id, attempt = job["id"], job["attempts"]
        self._as(job)
        self.studio.library.on_open = lambda video: self.store.update(job_id, "in_progress", attempt,
                                                                      library_id=video.id)
        output = self.settings.media_dir / f"{job_id}.mp4"
        try:
            if job["cancel_requested"]:
                raise Cancelled("cancelled by the client")
            prepared = self.studio.prepare(build_request(job["kind"], json.loads(job["request"]), output, self.device))
            video = self.studio.run(prepared, self._reporter(job))
            write_spritesheet(output, spritesheet_path(self.settings, job_id), video.num_frames or 1)
        except Shutdown:
            self.store.update(job_id, "in_progress", attempt, status="queued", progress=0, attempts=attempt - 1)
            return
        except Cancelled as exc:
            self._finish(job, "cancelled", {"code": "cancelled", "message": str(exc) or "cancelled"})
        except PolicyRefusal as exc:  # OpenAI's code for a refused prompt or output
            self._finish(job, "failed", {"code": "moderation_blocked", "message": str(exc)})
        except SoraError as exc:
            self._finish(job, "failed", {"code": type(exc).__name__, "message": str(exc)})
        except Exception as exc:  # a bug fails one job, not the worker
            log.exception("job %s failed", job_id)
            self._finish(job, "failed", {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
        else:
            record = {k: v for k, v in video.to_dict().items() if k not in PUBLIC_RECORD_SKIP}
            self._finish(job, "completed", None, progress=100, library_id=video.id, output=str(output),
                         sha256=video.sha256, bytes=output.stat().st_size, seconds=video.seconds, size=video.size,
                         record=record)
        finally:
            self.studio.library.on_open = None

    def _finish(self, job: dict, status: str, error: dict | None, **fields) -> None:
        if self.store.update(job["id"], "in_progress", job["attempts"], status=status, completed_at=int(time.time()),
                             error=json.dumps(error) if error else None, **fields):
            settle(self.store, job["id"], self.on_finish)


def write_spritesheet(video: Path, target: Path, num_frames: int, count: int = 16, width: int = 160) -> None:
    """A JPEG grid of up to `count` frames spread over the clip, each at most `width` pixels wide."""
    import imageio_ffmpeg
    import numpy as np
    from PIL import Image

    from sora_cli.media.encode import write_bytes

    count = max(1, min(count, num_frames))
    wanted = {round(i * (num_frames - 1) / max(1, count - 1)) for i in range(count)}
    reader = imageio_ffmpeg.read_frames(str(video), pix_fmt="rgb24")
    source_w, source_h = next(reader)["size"]
    tile_w = min(width, source_w)
    tile_h = max(1, round(source_h * tile_w / source_w))
    tiles = []
    try:  # streamed: only the chosen frames are kept, already small
        for index, raw in enumerate(reader):
            if index in wanted:
                frame = np.frombuffer(raw, dtype=np.uint8).reshape(source_h, source_w, 3)
                tiles.append(Image.fromarray(frame).resize((tile_w, tile_h), Image.Resampling.BILINEAR))
    finally:
        reader.close()
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * tile_w, rows * tile_h))
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % columns) * tile_w, (index // columns) * tile_h))
    buffer = io.BytesIO()
    sheet.save(buffer, format="JPEG", quality=85)
    write_bytes(buffer.getvalue(), target)


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when the server's process dies, even by SIGKILL, so a restarted
    server never finds a stray worker still writing. Elsewhere `stopping()` notices the new parent id."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(0)


def main(argv: list[str]) -> None:
    settings, device, parent = ServerSettings.from_json(argv[0]), argv[1] or None, int(argv[2])
    _die_with_parent(parent)
    if device is None and hasattr(os, "nice"):
        # CPU mode: generation would take every core from the API; at a lower priority it still gets all the
        # CPU nobody else wants, while a poll is answered at once
        os.nice(10)
    logging.basicConfig(level=logging.INFO, format="sora worker %(process)d: %(message)s")
    worker = Worker(settings, device, parent)
    for sig in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C reaches the whole process group: stop the same way
        signal.signal(sig, lambda *_: (worker.stop.set(), worker.wake.set()))
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda *_: worker.wake.set())  # the API queued a job
        # started with SIGUSR1 blocked (see pool.py), so an early one waited for the handler: take it now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    worker.run()


if __name__ == "__main__":
    main(sys.argv[1:])
