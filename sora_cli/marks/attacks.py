"""What happens to a video after it leaves sora-cli, done with the real ffmpeg, for tests and the bench.

Each transform starts from the file sora-cli itself writes (H.264 crf 18, yuv420p, see media/encode.py),
so the mark is always compressed twice, as it is in the wild: once by us, once by whoever re-posts it.
Frames come back through `imageio_ffmpeg.read_frames` at whatever size the transform left them.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

SOURCE_CRF = 18  # what sora-cli writes (media/encode.py)
SOURCE_FPS = 30


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def has_encoder(name: str) -> bool:
    """Whether the bundled ffmpeg was built with `name` (libx265 is not in every build)."""
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True)
    return f" {name} " in done.stdout


def write_mp4(frames: np.ndarray, path: Path, fps: int = SOURCE_FPS, crf: int = SOURCE_CRF) -> None:
    """uint8 [F, H, W, 3] -> H.264 yuv420p mp4, as sora-cli encodes (odd sizes are padded by one px)."""
    count, height, width, _ = frames.shape
    command = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
        "-s", f"{width}x{height}", "-r", str(fps), "-i", "-", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-c:v", "libx264", "-crf", str(crf), "-preset", "medium", "-pix_fmt", "yuv420p", str(path),
    ]
    subprocess.run(command, input=np.ascontiguousarray(frames).tobytes(), check=True, capture_output=True)


def read_mp4(path: Path) -> np.ndarray:
    """All frames of `path` as uint8 [F, H, W, 3], at the file's own size."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = reader.__next__()
    width, height = meta["size"]
    frames = [np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3) for raw in reader]
    return np.stack(frames)


def _x264(crf: int) -> list[str]:
    return ["-c:v", "libx264", "-crf", str(crf), "-preset", "medium", "-pix_fmt", "yuv420p"]


def crop_filter(fraction: float, at: tuple[float, float]) -> str:
    """Keep (1 - fraction) of width and height; `at` places the kept window (0..1 of the slack)."""
    keep = f"trunc(iw*{1 - fraction:.3f}/2)*2:trunc(ih*{1 - fraction:.3f}/2)*2"
    return f"crop={keep}:trunc((iw*{fraction:.3f})*{at[0]:.3f}):trunc((ih*{fraction:.3f})*{at[1]:.3f})"


TRANSFORMS: dict[str, list[str]] = {
    "h264-crf23": _x264(23),
    "h264-crf28": _x264(28),
    "h264-crf35": _x264(35),
    "half-size": ["-vf", "scale=trunc(iw/4)*2:trunc(ih/4)*2", *_x264(23)],
    "fps-30to24": ["-vf", "fps=24", *_x264(23)],
    "h265-crf28": ["-c:v", "libx265", "-crf", "28", "-preset", "medium", "-pix_fmt", "yuv420p",
                   "-x265-params", "log-level=error"],
    "crop-10pct": ["-vf", crop_filter(0.10, (0.7, 0.3)), *_x264(23)],
}


def transform(frames: np.ndarray, name: str, args: list[str] | None = None) -> np.ndarray:
    """Encode `frames` as sora-cli does, apply TRANSFORMS[name] (or `args`) with ffmpeg, decode back.

    `name` "source" stops after sora-cli's own encode: the file as it leaves the tool.
    """
    args = TRANSFORMS.get(name, []) if args is None else args
    with tempfile.TemporaryDirectory(prefix="sora-marks-") as tmp:
        source, target = Path(tmp) / "source.mp4", Path(tmp) / "target.mp4"
        write_mp4(frames, source)
        if name == "source":
            return read_mp4(source)
        command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source), *args,
                   str(target)]
        subprocess.run(command, check=True, capture_output=True)
        return read_mp4(target)


def runner(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """A one-argument function applying transform `name` (handy for tables of transforms)."""
    return lambda frames: transform(frames, name)
