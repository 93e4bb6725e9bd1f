"""A cheap look at an ISO-BMFF (MP4/MOV) file's top-level boxes, before c2pa parses it.

c2pa reads a truncated MP4 as "altered" (the hash no longer matches) and an empty one as an I/O error
("failed to fill whole buffer"). Walking the top-level box headers — a few reads of 16 bytes, no payload —
lets the verdict say plainly "the file is truncated" or "this is text, not an MP4" instead.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

VIDEO_FORMATS = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".m4a": "audio/mp4"}
_BMFF_FIRST = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pnot", b"styp"}
_MAX_BOXES = 100_000


class BoxError(ValueError):
    """The box structure is broken; the message is one plain sentence."""


def iter_boxes(path: Path) -> Iterator[tuple[str, int, int, int]]:
    """Yield (type, offset, header size, total size) for each top-level box; BoxError when sizes do not add up."""
    path = Path(path)
    size = path.stat().st_size
    offset = count = 0
    with open(path, "rb") as handle:
        while offset < size:
            count += 1
            if count > _MAX_BOXES:
                raise BoxError(f"more than {_MAX_BOXES} top-level boxes: not a sane MP4")
            handle.seek(offset)
            head = handle.read(16)
            if len(head) < 8:
                raise BoxError(f"the file is truncated: {size - offset} stray bytes after the last box")
            box_size, kind = int.from_bytes(head[:4], "big"), head[4:8].decode("latin-1")
            header = 8
            if box_size == 1:
                if len(head) < 16:
                    raise BoxError(f"the file is truncated inside the header of the {kind!r} box")
                box_size, header = int.from_bytes(head[8:16], "big"), 16
            elif box_size == 0:  # "extends to the end of the file"
                box_size = size - offset
            if box_size < header:
                raise BoxError(f"the {kind!r} box at byte {offset} has an impossible size ({box_size})")
            if offset + box_size > size:
                raise BoxError(f"the file is truncated: the {kind!r} box needs {box_size} bytes "
                               f"but only {size - offset} remain")
            yield kind, offset, header, box_size
            offset += box_size


def find_box(path: Path, kind: str) -> tuple[int, int] | None:
    """(payload offset, payload size) of the first top-level box of `kind`, or None."""
    for found, offset, header, size in iter_boxes(path):
        if found == kind:
            return offset + header, size - header
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable / len(head) > 0.95


def stat_problem(path: Path) -> str | None:
    """Why `path` is no file to verify (missing, a folder, empty), from one stat call; None if it may be one."""
    try:
        info = Path(path).stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read it: {exc.strerror or type(exc).__name__}"
    if stat.S_ISDIR(info.st_mode):
        return "it is a folder, not a video file"
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if info.st_size == 0:
        return "the file is empty (0 bytes)"
    return None


def structure_problem(path: Path) -> str | None:
    """Why an MP4-named or MP4-looking file is not a whole MP4 (text, truncated, no moov), in plain words."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or type(exc).__name__}"
    if path.suffix.lower() not in VIDEO_FORMATS and head[4:8] not in _BMFF_FIRST:
        return None  # another format (JPEG, PNG, ...): c2pa knows more of them than we do
    if head[4:8] != b"ftyp":
        if _looks_like_text(head):
            return "it is a text file, not an MP4 video"
        return "not an MP4 video: it does not start with an 'ftyp' box"
    try:
        kinds = [kind for kind, *_ in iter_boxes(path)]
    except BoxError as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or type(exc).__name__}"
    if "moov" not in kinds:
        return "the MP4 has no 'moov' box (an unfinished or damaged recording)"
    return None


def precheck(path: Path) -> str | None:
    """Both checks: why `path` cannot be a readable MP4, or None when it is worth handing to c2pa."""
    return stat_problem(path) or structure_problem(path)
