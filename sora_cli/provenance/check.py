"""`verify-provenance` in one call: the C2PA verdict, and for a clip whose manifest was stripped, the
invisible watermark and the signed original it points to (found in the local library by soft binding).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sora_cli.errors import ExitCode
from sora_cli.provenance.verify import Verdict, Verifier

OK_STATUSES = ("trusted", "intact_untrusted", "intact_expired")
# the exit code of a run is the one of its worst file
_EXIT = {"altered": ExitCode.PROVENANCE_INVALID, "unreadable": ExitCode.UNREADABLE,
         "no_manifest": ExitCode.NO_PROVENANCE, "watermark_only": ExitCode.NO_PROVENANCE,
         "untrusted": ExitCode.UNTRUSTED}
_ORDER = ("altered", "unreadable", "watermark_only", "no_manifest", "untrusted")
WATERMARK_MAX_FRAMES = 120  # enough votes for detection; a long clip is not decoded whole


@dataclass(frozen=True)
class Check:
    path: str
    verdict: Verdict
    watermark: dict[str, Any] | None = None  # {"present", "id", "confidence", "false_positive_rate"}
    original: dict[str, Any] | None = None  # the library's record of the signed original

    @property
    def status(self) -> str:
        """The verdict's tree status, or `watermark_only` for a stripped clip that still carries our mark."""
        if self.verdict.status == "no_manifest" and self.watermark and self.watermark["present"]:
            return "watermark_only"
        return self.verdict.tree_status

    def outcome(self, require_trusted: bool) -> str | None:
        """None when the file passes; else the key of its exit code."""
        status = self.status
        if status in OK_STATUSES:
            return "untrusted" if require_trusted and status != "trusted" else None
        return status

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "verdict": self.verdict.to_dict(),
                "watermark": self.watermark, "original": self.original}


def exit_code(checks: list[Check], require_trusted: bool) -> ExitCode:
    outcomes = {c.outcome(require_trusted) for c in checks} - {None}
    for key in _ORDER:
        if key in outcomes:
            return _EXIT[key]
    return ExitCode.OK


def find_watermark(path: Path) -> dict[str, Any]:
    from sora_cli.library import watermark_key
    from sora_cli.marks.invisible import detect
    from sora_cli.media.decode import read_frames

    try:
        frames = read_frames(path, max_frames=WATERMARK_MAX_FRAMES)
    except ValueError as exc:
        return {"present": False, "id": None, "confidence": 0.0, "false_positive_rate": None, "error": str(exc)}
    found = detect(frames)
    readable = found.present and found.content_id is not None  # a mark can be present with its id unreadable
    return {"present": found.present, "id": watermark_key(found.content_id) if readable else None,
            "confidence": round(found.confidence, 4), "false_positive_rate": found.false_positive_rate}


def check_files(paths: list[Path], *, anchors_pem: bytes | None, library: Any | None,
                watermark: bool = True) -> list[Check]:
    verifier = Verifier(anchors_pem)
    checks = []
    try:
        for path in paths:
            verdict = verifier.verify(path)
            mark = original = None
            if watermark and verdict.status == "no_manifest":
                mark = find_watermark(path)
                if mark["id"] and library is not None:
                    original = _original(library, int(mark["id"], 16), verifier)
            checks.append(Check(str(path), verdict, mark, original))
    finally:
        verifier.close()
    return checks


def _original(library: Any, content_id: int, verifier: Verifier) -> dict[str, Any] | None:
    video = library.by_watermark(content_id)
    if video is None:
        return None
    found = {"id": video.id, "path": video.path, "created_at": video.created_at, "sha256": video.sha256,
             "manifest_label": video.manifest_label, "model": video.model, "prompt": video.prompt}
    if video.path and Path(video.path).is_file():
        found["status"] = verifier.verify(video.path).tree_status
    else:
        found["status"] = "missing"
    return found


def check_many(paths: list[Path], *, jobs: int = 1, **kwargs: Any) -> list[Check]:
    """check_files over `jobs` threads (each with its own c2pa context), results in input order."""
    if jobs <= 1 or len(paths) < 2:
        return check_files(paths, **kwargs)
    from concurrent.futures import ThreadPoolExecutor

    chunks = [paths[i::jobs] for i in range(jobs)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda chunk: check_files(chunk, **kwargs), chunks))
    ordered: list[Check] = [None] * len(paths)  # type: ignore[list-item]
    for offset, chunk_result in enumerate(results):
        ordered[offset::jobs] = chunk_result
    return ordered
