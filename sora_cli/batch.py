"""Batch: many prompts (JSONL, CSV or plain text) through one warm model, a manifest out, resumable.

Each job line in `manifest.jsonl` holds its id, every parameter, the resolved seed, model id and hash,
library versions, output path, sha256, status and timings. `--resume` skips a job whose key (a hash of
its requested parameters and its occurrence among identical lines) is already completed with its
file intact.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sora_cli.engines import ProgressEvent, Reporter, no_report
from sora_cli.errors import SoraError, UsageError
from sora_cli.produce import Studio, slugify
from sora_cli.requests import REQUEST_TYPES, GenerateRequest, params_key

MANIFEST = "manifest.jsonl"
# fields a batch line may set; `output` is a file name inside --out-dir; `task` is a command name
LINE_FIELDS = {f.name for cls in REQUEST_TYPES.values() for f in fields(cls)} | {"task"}
_NUMERIC = {"seconds": float, "fps": int, "seed": int, "steps": int, "guidance": float, "strength": float}
_BOOLEAN = ("visible_mark", "include_prompt", "audio", "attest_consent")
_PATHS = ("image", "last_image")
_TRUTH = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass
class BatchLine:
    number: int
    request: GenerateRequest | None = None
    key: str = ""
    error: str | None = None


@dataclass
class BatchResult:
    completed: int = 0
    skipped: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)


def read_lines(path: Path, defaults: dict[str, Any]) -> list[BatchLine]:
    """Parse every line; a bad line becomes a BatchLine with `error`, the others still run."""
    if not path.is_file():
        raise UsageError(f"batch file {path} does not exist")
    try:
        raw = list(_raw_rows(path))
    except UnicodeDecodeError:
        raise UsageError(f"batch file {path} is not UTF-8 text") from None
    lines: list[BatchLine] = []
    seen: dict[str, int] = {}
    for number, row in raw:
        line = BatchLine(number)
        try:
            request = _to_request(row, defaults, path.parent)
            request.check()
        except (SoraError, ValueError, TypeError) as exc:
            line.error = str(exc)
        else:
            requested = {k: v for k, v in vars(request).items() if v is not None}
            if request.command != "generate":  # generate lines keep the keys of manifests made before tasks
                requested["task"] = request.command
            base = params_key(requested)
            seen[base] = seen.get(base, 0) + 1
            line.request, line.key = request, params_key({"params": base, "occurrence": seen[base]})
        lines.append(line)
    return lines


def _raw_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        for number, row in enumerate(reader, start=2):
            yield number, {k.strip(): v for k, v in row.items() if k and v not in (None, "")}
        return
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if suffix in (".jsonl", ".ndjson"):
            try:
                yield number, json.loads(stripped)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON ({exc.msg} at column {exc.colno})"
        else:
            yield number, {"prompt": stripped}


def _to_request(row: dict[str, Any] | str, defaults: dict[str, Any], folder: Path) -> GenerateRequest:
    """A line's request; the command comes from `task`, else from the inputs it names (image, video)."""
    if isinstance(row, str):
        raise UsageError(row)
    if not isinstance(row, dict):
        raise UsageError("a JSONL line must be an object such as {\"prompt\": \"...\"}")
    unknown = sorted(set(row) - LINE_FIELDS)
    if unknown:
        raise UsageError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(LINE_FIELDS))}")
    values = {**defaults, **row}
    task = values.pop("task", None) or ("animate-image" if "image" in values else
                                         "remix" if "video" in values else "generate")
    if task not in REQUEST_TYPES:
        raise UsageError(f"task must be one of {', '.join(REQUEST_TYPES)}, got {task!r}")
    cls = REQUEST_TYPES[task]
    allowed = {f.name for f in fields(cls)}
    values = {k: v for k, v in values.items() if k in allowed or k in row}  # defaults of other commands
    wrong = sorted(set(values) - allowed)
    if wrong:
        raise UsageError(f"{', '.join(wrong)} cannot be used with {task}")
    # inputs named relative to the batch file are found beside it, wherever the batch runs from
    for key in _PATHS:
        if isinstance(values.get(key), str):
            values[key] = folder / Path(values[key]).expanduser()
    if isinstance(values.get("video"), str) and ("/" in values["video"] or Path(values["video"]).suffix):
        values["video"] = str(folder / Path(values["video"]).expanduser())
    for key, kind in _NUMERIC.items():
        if isinstance(values.get(key), str):
            try:
                values[key] = kind(values[key])
            except ValueError:
                raise UsageError(f"{key} must be a number, got {values[key]!r}") from None
    for key in _BOOLEAN:
        if isinstance(values.get(key), str):
            if values[key].strip().lower() not in _TRUTH:
                raise UsageError(f"{key} must be true or false, got {values[key]!r}")
            values[key] = _TRUTH[values[key].strip().lower()]
    if isinstance(values.get("cameos"), str | list):
        values["cameos"] = tuple([values["cameos"]] if isinstance(values["cameos"], str) else values["cameos"])
    if isinstance(values.get("references"), str | list):  # character pictures, beside the batch file
        refs = [values["references"]] if isinstance(values["references"], str) else values["references"]
        values["references"] = tuple(folder / Path(str(r)).expanduser() for r in refs)
    if "output" in values and values["output"] is not None:
        values["output"] = Path(str(values["output"]))
    if not isinstance(values.get("prompt"), str):
        if not cls.prompt_optional:
            raise UsageError("the line has no prompt")
        values["prompt"] = ""
    return cls(**values)


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return done
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if entry.get("status") == "completed":
            done[entry["key"]] = entry
    return done


def _still_there(entry: dict[str, Any]) -> bool:
    from sora_cli.media.encode import sha256_file

    path = Path(entry.get("output", ""))
    return path.is_file() and sha256_file(path) == entry.get("sha256")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("sora-cli", "torch", "diffusers", "transformers"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def run_batch(studio: Studio, lines: list[BatchLine], out_dir: Path, *, resume: bool = False,
              report: Reporter = no_report, on_video=None) -> BatchResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    done = read_manifest(manifest) if resume else {}
    result = BatchResult()
    libs = versions()
    for line in _to_run(lines, done, result, report):
        request, entry = _placed(line, out_dir)
        started = time.time()
        try:
            job = studio.prepare(request)
            report(ProgressEvent("job", message=f"line {line.number}: {request.prompt[:60]}"))
            video = studio.run(job, report)
        except KeyboardInterrupt:
            _append(manifest, {**entry, "status": "cancelled", "started_at": started})
            raise
        except SoraError as exc:
            result.failed.append((line.number, str(exc)))
            _append(manifest, {**entry, "status": "failed", "error": str(exc), "started_at": started})
            continue
        entry.update(
            id=video.id, status="completed", parameters=video.parameters, seed=video.seed,
            model=video.model, model_id=job.model.location, model_hash=video.model_hash, versions=libs,
            output=video.path, sha256=video.sha256, timings=video.timings, started_at=started,
        )
        _append(manifest, entry)
        result.completed += 1
        if on_video:
            on_video(video)
    return result


def _to_run(lines: list[BatchLine], done: dict[str, dict[str, Any]], result: BatchResult,
            report: Reporter) -> list[BatchLine]:
    """The lines still to make: invalid ones are counted failed, completed ones (file intact) skipped."""
    todo = []
    for line in lines:
        if line.error or line.request is None:
            result.failed.append((line.number, line.error or "invalid"))
        elif line.key in done and _still_there(done[line.key]):
            result.skipped += 1
            report(ProgressEvent("skip", message=f"line {line.number}: already done"))
        else:
            todo.append(line)
    return todo


def _placed(line: BatchLine, out_dir: Path) -> tuple[GenerateRequest, dict[str, Any]]:
    """The line's request with its output inside out_dir, and the start of its manifest entry."""
    request = line.request
    stem = slugify(request.prompt or request.command)
    name = request.output.name if request.output else f"{line.number:04d}-{stem}.mp4"
    entry = {"key": line.key, "line": line.number, "task": request.command, "request": _jsonable(request)}
    return request.with_(output=out_dir / name), entry


def run_batch_remote(studios: list, lines: list[BatchLine], out_dir: Path, *, resume: bool = False,
                     concurrency: int = 2, retries: int = 3, backoff: float = 2.0, report: Reporter = no_report,
                     on_video=None, sleep=time.sleep) -> BatchResult:
    """The lines on one or more servers (RemoteStudio), `concurrency` at a time, spread round-robin.

    A job that meets a transient failure (server unreachable, 429 or 5xx after the client's own retries) is
    tried again after an exponential backoff, on the next server; a refusal (moderation, a bad value, a
    failed provenance check) is final. Ctrl-C cancels the jobs running on the servers and records them.
    """
    import itertools
    import threading
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from sora_cli.engines.remote import ServerFailed
    from sora_cli.errors import Cancelled, ServerUnreachable

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    result = BatchResult()
    todo = _to_run(lines, read_manifest(manifest) if resume else {}, result, report)
    lock, stop = threading.Lock(), threading.Event()
    turn = itertools.count()
    finished = [0]

    def say(event: ProgressEvent) -> None:
        with lock:
            report(event)

    def stopping(_event: ProgressEvent) -> None:
        if stop.is_set():
            raise Cancelled("the batch was interrupted")

    def make(line: BatchLine) -> None:
        request, entry = _placed(line, out_dir)
        started, first = time.time(), next(turn)
        error: str | None = None
        for attempt in range(retries + 1):
            studio = studios[(first + attempt) % len(studios)]
            entry.update(server=studio.url, attempts=attempt + 1)
            remote_id = None
            try:
                job = studio.prepare(request)
                remote_id = studio.submit(job)["id"]
                say(ProgressEvent("job", message=f"line {line.number}: {remote_id} on {studio.url}"))
                video = studio.fetch(studio.wait(remote_id, stopping), job, timings={
                    "remote": round(time.time() - started, 3)})
            except Cancelled:
                if remote_id and stop.is_set():
                    with contextlib.suppress(Exception):
                        studio.client.cancel(remote_id)
                error, status = "cancelled", "cancelled"
                break
            except (ServerUnreachable, ServerFailed) as exc:
                error, status = str(exc), "failed"
                if attempt < retries and not stop.is_set():
                    delay = backoff * 2**attempt
                    say(ProgressEvent("retry", message=f"line {line.number}: {exc}; again in {delay:g} s"))
                    sleep(delay)
                continue
            except SoraError as exc:
                error, status = str(exc), "failed"
                break
            entry.update(id=video.id, remote_id=remote_id, status="completed", seed=video.seed, model=video.model,
                         parameters=video.parameters, output=video.path, sha256=video.sha256,
                         timings=video.timings, started_at=started)
            with lock:
                _append(manifest, entry)
                result.completed += 1
                finished[0] += 1
                report(ProgressEvent("batch", step=finished[0], total=len(todo)))
                if on_video:
                    on_video(video)
            return
        with lock:
            _append(manifest, {**entry, "status": status, "error": error, "started_at": started})
            if status == "failed":
                result.failed.append((line.number, error or "failed"))
            finished[0] += 1
            report(ProgressEvent("batch", step=finished[0], total=len(todo)))

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="sora-batch")
    try:
        for future in as_completed([pool.submit(make, line) for line in todo]):
            future.result()
    except KeyboardInterrupt:
        stop.set()  # the running jobs see it at their next poll, cancel themselves on the server, and stop
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
    return result


def _jsonable(request: GenerateRequest) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(request).items() if v is not None}


def _append(manifest: Path, entry: dict[str, Any]) -> None:
    with open(manifest, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
