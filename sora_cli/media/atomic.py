"""Write to a temporary name in the target folder, rename when complete.

A half-written file is never left under its final name: on any exception (Ctrl-C included)
the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sora_cli.errors import OutputError


def check_output_dir(folder: Path) -> None:
    """Fail early, before any model loads, if `folder` cannot take a new file."""
    if not folder.exists():
        raise OutputError(f"output folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {folder} is not writable")


@contextlib.contextmanager
def atomic_path(final: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside `final` (same suffix, so tools pick the format); rename on success."""
    final = Path(final)
    suffix = final.suffix if suffix is None else suffix
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".part{suffix}", dir=final.parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {final.parent}: {exc.strerror}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        if mode is not None:
            os.chmod(tmp, mode)


@contextlib.contextmanager
def scratch_path(beside: Path, suffix: str) -> Iterator[Path]:
    """A temp file in `beside`'s folder for an intermediate step; always removed."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{Path(beside).stem}.", suffix=f".tmp{suffix}", dir=Path(beside).parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {Path(beside).parent}: {exc.strerror}") from None
    os.close(fd)
    try:
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
