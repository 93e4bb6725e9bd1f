"""The API's side of the queue: recovery at start-up, one worker process per device, cancel, stop.

Recovery runs before any worker starts: jobs a dead server left in_progress are re-queued (or failed after
`max_attempts`, so a job that kills the server cannot do it forever), half-written files (the temp names of
atomic writes) are removed, and completed outputs are checked, so no client is served a file that is not whole.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sora_cli.errors import SoraError
from sora_cli.library import Library
from sora_cli.server.settings import ServerSettings
from sora_cli.server.store import Store
from sora_cli.server.worker import settle

log = logging.getLogger("sora_cli.server")


class WorkerPool:
    RESTARTS = 3  # a device's worker that dies more often than this in a minute is left down (and logged)

    def __init__(self, settings: ServerSettings, store: Store, on_finish: Callable[[dict], None] = lambda job: None):
        self.settings, self.store, self.on_finish = settings, store, on_finish
        self.processes: list[subprocess.Popen] = []
        self._deaths: list[list[float]] = []
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> dict[str, int]:
        """Recover, then start the workers. Call it from a thread that lives as long as the server: on Linux a
        worker dies with the thread that started it."""
        counts = recover(self.settings, self.store, self.on_finish)
        self.processes = [self._spawn(device) for device in self.settings.devices]
        self._deaths = [[] for _ in self.processes]
        return counts

    def _spawn(self, device: str | None) -> subprocess.Popen:
        command = [sys.executable, "-m", "sora_cli.server.worker", self.settings.to_json(), device or "",
                   str(os.getpid())]
        if not hasattr(signal, "SIGUSR1"):
            return subprocess.Popen(command, stdin=subprocess.DEVNULL)
        # the child inherits a blocked SIGUSR1 (a wake-up sent before its handler exists would kill it)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        try:
            return subprocess.Popen(command, stdin=subprocess.DEVNULL)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})

    def watch(self) -> None:
        """A worker that dies on its own (a crash, the OOM killer) gives back its job and is started again.
        Called about once a second from the server's loop thread (the thread the workers are tied to)."""
        for index, process in enumerate(self.processes):
            if self._stopping.is_set() or process.poll() is None:
                continue
            now = time.monotonic()
            deaths = self._deaths[index] = [t for t in self._deaths[index] if now - t < 60] + [now]
            log.error("worker %s (pid %s) exited with %s", index, process.pid, process.returncode)
            give_back(self.settings, self.store, self.store.interrupted(process.pid), self.on_finish)
            if len(deaths) <= self.RESTARTS:
                self.processes[index] = self._spawn(self.settings.devices[index])
            else:
                log.error("worker %s died %s times in a minute: not restarted", index, len(deaths))

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every worker to stop (a running job goes back to the queue), then make sure."""
        self._stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()  # its job stays in_progress: the next start re-queues it
                process.wait()

    def alive(self) -> int:
        return sum(process.poll() is None for process in self.processes)

    def wake(self) -> None:
        """A job was queued: idle workers look now instead of at their next poll."""
        for process in self.processes:
            if process.poll() is None and hasattr(signal, "SIGUSR1"):
                try:
                    process.send_signal(signal.SIGUSR1)
                except ProcessLookupError:
                    pass

    def cancel(self, job_id: str) -> None:
        """A queued job is cancelled at once; a running one at its worker's next progress event."""
        error = {"code": "cancelled", "message": "cancelled by the client"}
        if self.store.update(job_id, only_if="queued", status="cancelled", error=error, completed_at=int(time.time())):
            settle(self.store, job_id, self.on_finish)
            return
        self.store.update(job_id, only_if="in_progress", cancel_requested=1)


def give_back(settings: ServerSettings, store: Store, jobs: list[dict], on_finish: Callable[[dict], None]) -> tuple:
    """Jobs whose run was cut short: re-queued, or failed after `max_attempts` (a job that kills its worker
    must not do it forever). Returns (requeued, failed)."""
    library = Library(settings.paths.library_db)
    requeued = failed = 0
    for job in jobs:
        if job["library_id"]:  # close the library row the dead run opened
            try:
                row = library.get(job["library_id"])
                row.status, row.error = "failed", {"code": "interrupted", "message": "the run was cut short"}
                library.save(row)
            except SoraError:
                pass
        if job["attempts"] < settings.max_attempts:
            store.update(job["id"], only_if="in_progress", status="queued", progress=0, library_id=None,
                         cancel_requested=0)
            requeued += 1
        else:
            message = f"the run was cut short {job['attempts']} times (the server or its worker stopped); not retried"
            store.update(job["id"], only_if="in_progress", status="failed", completed_at=int(time.time()),
                         error=json.dumps({"code": "interrupted", "message": message}))
            failed += 1
            settle(store, job["id"], on_finish)
    return requeued, failed


def recover(settings: ServerSettings, store: Store, on_finish: Callable[[dict], None]) -> dict[str, int]:
    """After a crash: re-queue or fail interrupted jobs, drop half-written files, check completed outputs."""
    counts = {"requeued": 0, "failed": 0, "damaged": 0, "partial_files": 0}
    counts["requeued"], counts["failed"] = give_back(settings, store, store.interrupted(), on_finish)
    for folder in (settings.media_dir, settings.uploads_dir):
        for partial in folder.glob(".*"):  # the temp names of atomic writes: never a finished file
            partial.unlink(missing_ok=True)
            counts["partial_files"] += 1
    for job in store.completed_outputs():
        path = Path(job["output"] or "")
        if not path.is_file() or path.stat().st_size != job["bytes"]:
            store.update(job["id"], status="failed",
                         error=json.dumps({"code": "output_lost", "message": "the video file is missing or damaged"}))
            counts["damaged"] += 1
    if any(counts.values()):
        log.warning("recovered after a stop: %s", counts)
    return counts
