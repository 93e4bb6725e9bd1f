"""Frames in, a playable MP4 out: H.264, yuv420p, faststart, through imageio-ffmpeg's ffmpeg."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sora_cli.media.atomic import atomic_path

CRF = 18  # visually lossless for generated content; the invisible mark is tuned to survive far worse


def to_uint8(frames: Any) -> Any:
    """Pipeline output (float in [0, 1], shape [F, H, W, 3], maybe batched) -> uint8 frames."""
    import numpy as np

    array = np.asarray(frames)
    if array.ndim == 5:
        array = array[0]
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected frames shaped [F, H, W, 3], got {array.shape}")
    return array


def encode_mp4(frames: Any, fps: int, path: Path) -> None:
    """Encode `frames` (uint8 [F, H, W, 3]) to `path` (a temp name: the caller renames or signs it)."""
    import imageio_ffmpeg
    import numpy as np

    count, height, width, _ = frames.shape
    writer = imageio_ffmpeg.write_frames(
        str(path), (width, height), fps=fps, codec="libx264", pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p", quality=None, macro_block_size=1, ffmpeg_log_level="error",
        output_params=["-crf", str(CRF), "-preset", "medium", "-movflags", "+faststart", "-f", "mp4"],
    )
    writer.send(None)
    try:
        for index in range(count):
            writer.send(np.ascontiguousarray(frames[index]))
    finally:
        writer.close()


def jpeg_bytes(frame: Any, quality: int = 88) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_bytes(data: bytes, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
