"""Decode a video file to RGB frames with imageio-ffmpeg's ffmpeg."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_frames(path: Path, max_frames: int | None = None) -> Any:
    """uint8 frames [F, H, W, 3]; raises ValueError for a file ffmpeg cannot decode as video."""
    import imageio_ffmpeg
    import numpy as np

    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = reader.__next__()
    except (OSError, RuntimeError, StopIteration) as exc:
        raise ValueError(f"ffmpeg cannot decode {Path(path).name} as video") from exc
    width, height = meta["size"]
    frames = []
    try:
        for raw in reader:
            frames.append(np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3))
            if max_frames is not None and len(frames) >= max_frames:
                break
    finally:
        reader.close()
    if not frames:
        raise ValueError(f"{Path(path).name} has no video frames")
    return np.stack(frames)
