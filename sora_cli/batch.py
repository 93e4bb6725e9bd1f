"""Batch: many prompts (JSONL, CSV or plain text) through one warm model, a manifest out, resumable.

Each job line in `manifest.jsonl` holds its id, every parameter, the resolved seed, model id and hash,
library versions, output path, sha256, status and timings. `--resume` skips a job whose key (a hash of
its requested parameters and its occurrence among identical lines) is already completed with its
file intact.
"""

from __future__ import annotations

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
    for line in lines:
        if line.error or line.request is None:
            result.failed.append((line.number, line.error or "invalid"))
            continue
        if line.key in done and _still_there(done[line.key]):
            result.skipped += 1
            report(ProgressEvent("skip", message=f"line {line.number}: already done"))
            continue
        request = line.request
        stem = slugify(request.prompt or request.command)
        name = request.output.name if request.output else f"{line.number:04d}-{stem}.mp4"
        request = request.with_(output=out_dir / name)
        entry: dict[str, Any] = {"key": line.key, "line": line.number, "task": request.command,
                                 "request": _jsonable(line.request)}
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


def _jsonable(request: GenerateRequest) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(request).items() if v is not None}


def _append(manifest: Path, entry: dict[str, Any]) -> None:
    with open(manifest, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
