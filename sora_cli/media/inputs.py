"""Input photos and clips for image-to-video and video continuation: read, check, fit to the model's size.

Every way an input can be unreadable ends in one InputError line that names the file; heavy imports
(numpy, Pillow, imageio-ffmpeg) happen inside the functions so importing this module stays cheap.
"""

from __future__ import annotations

import math
import numbers
import re
import subprocess
import tempfile
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from sora_cli.errors import InputError, UsageError

FIT_MODES = ("crop", "pad", "stretch")
BACKGROUND = (0, 0, 0)  # transparent pixels and pad bars become black, as in the models' training letterboxes
MAX_VIDEO_BYTES = 4 << 30  # decoded RGB frames held in memory at once; a longer clip needs max_seconds

_VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".m2ts", ".3gp", ".flv"}


def _check_file(path: Path, kind: str) -> Path:
    """The cheap checks before any decoder sees the file: exists, is a file, is not empty."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{kind} {path} does not exist")
    if path.is_dir():
        raise InputError(f"{kind} {path} is a folder, not a file")
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{kind} {path} cannot be opened: {exc.strerror}") from None
    if size == 0:
        raise InputError(f"{kind} {path} is empty (0 bytes)")
    return path


# ---------------------------------------------------------------------------------------------- photos


def load_image(path: Path) -> Any:
    """Any image Pillow reads -> RGB PIL image, EXIF-rotated, alpha composited onto black, first frame if animated."""
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    path = _check_file(path, "image")
    limit = Image.MAX_IMAGE_PIXELS or 0
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its limit; one limit, stated in the message, is clearer
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.seek(0)  # animated GIF / WebP / APNG: the first frame
                img.load()  # Image.open is lazy: a truncated file only fails on a full decode
                if limit and img.width * img.height > limit:  # formats that skip Pillow's check on open
                    raise Image.DecompressionBombError(f"Image size ({img.width * img.height} pixels) exceeds limit")
                try:
                    img = ImageOps.exif_transpose(img)
                except Exception as exc:  # a malformed EXIF block must not take the whole photo down
                    warnings.warn(f"ignoring unreadable EXIF orientation in {path}: {exc}", stacklevel=2)
                return _to_rgb(img)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found[1]) / 1e6:.3g} megapixels" if found else "too many pixels"
        raise InputError(f"image {path} is too large ({size}); the limit is {limit / 1e6:.3g} megapixels") from None
    except UnidentifiedImageError:
        raise InputError(f"image {path} is not an image Pillow can read{_not_image_hint(path)}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # OSError("image file is truncated ..."), broken chunks (SyntaxError), bad headers (ValueError)
        raise InputError(f"image {path} is truncated or corrupt ({_one_line(exc)})") from None


def _to_rgb(img: Any) -> Any:
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: a plain convert("RGB") clips everything above 255 to white
        img = img.point(lambda v: v / 256).convert("L")
    elif img.mode == "F":
        img = img.convert("L")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _not_image_hint(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        head = b""
    if head[4:8] == b"ftyp" and path.suffix.lower() in (".heic", ".heif"):
        return " (HEIC photos are not supported: convert it to JPEG or PNG)"
    if head[4:8] == b"ftyp" or head.startswith(b"\x1a\x45\xdf\xa3") or path.suffix.lower() in _VIDEO_SUFFIXES:
        return " (it looks like a video: give it as a video input)"
    return ""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# ---------------------------------------------------------------------------------------------- fitting


def _check_fit(width: int, height: int, mode: str) -> None:
    if mode not in FIT_MODES:
        raise UsageError(f"fit mode must be one of {', '.join(FIT_MODES)}, not {mode!r}")
    if not (isinstance(width, numbers.Integral) and isinstance(height, numbers.Integral)) or width < 1 or height < 1:
        raise UsageError(f"fit size must be positive whole pixels, not {width!r}x{height!r}")


def fit_image(img: Any, width: int, height: int, mode: str = "crop") -> Any:
    """Resize to exactly width x height: crop = cover then centre-crop, pad = fit then black bars, stretch = resize."""
    from PIL import Image

    _check_fit(width, height, mode)
    if img.mode != "RGB":
        img = _to_rgb(img)
    src_w, src_h = img.size
    if mode == "stretch":
        return img.resize((width, height), Image.Resampling.LANCZOS)
    if mode == "crop":
        # crop in source coordinates and resample only that box: scaling a 100000x10 strip to "cover"
        # first would build a huge intermediate image
        if src_w * height > width * src_h:  # source is wider than the target: trim left and right
            box_w, box_h = src_h * width / height, float(src_h)
        else:
            box_w, box_h = float(src_w), src_w * height / width
        left, top = (src_w - box_w) / 2, (src_h - box_h) / 2
        return img.resize((width, height), Image.Resampling.LANCZOS, box=(left, top, left + box_w, top + box_h))
    scale = min(width / src_w, height / src_h)
    inner_w = min(width, max(1, round(src_w * scale)))
    inner_h = min(height, max(1, round(src_h * scale)))
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    canvas.paste(img.resize((inner_w, inner_h), Image.Resampling.LANCZOS),
                 ((width - inner_w) // 2, (height - inner_h) // 2))
    return canvas


def fit_frames(frames: Any, width: int, height: int, mode: str = "crop") -> Any:
    """fit_image applied to every frame: uint8 [F, H, W, 3] -> uint8 [F, height, width, 3]."""
    import numpy as np
    from PIL import Image

    _check_fit(width, height, mode)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames shaped [F, H, W, 3], got {frames.dtype} {frames.shape}")
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((frames.shape[0], height, width, 3), dtype=np.uint8)
    for index, frame in enumerate(frames):
        out[index] = np.asarray(fit_image(Image.fromarray(frame), width, height, mode))
    return out


# ---------------------------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class VideoInput:
    frames: Any  # uint8 [F, H, W, 3] at a constant `fps`
    fps: float  # the rate the frames were sampled at
    width: int
    height: int
    duration: float  # of the whole input file, seconds
    start: float  # seconds into the input where frames[0] is
    used_seconds: float  # len(frames) / fps
    has_audio: bool

    def describe(self) -> str:
        """One line for the user: which part of which clip is used."""
        count = len(self.frames)
        return (f"using {self.used_seconds:.2f} s ({count} frame{'s' if count != 1 else ''} at {self.fps:g} fps) "
                f"from {_clock(self.start)} of a {self.duration:.1f} s clip")


def _clock(seconds: float) -> str:
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:05.2f}" if abs(rest - round(rest)) >= 0.005 else f"{int(minutes)}:{round(rest):02d}"


_STREAM_VIDEO = re.compile(r"Stream #\d+:(\d+).*?: Video: (\w+).*?, (\d+)x(\d+)")
_STREAM_AUDIO = re.compile(r"Stream #\d+:\d+.*?: Audio: ")
_INPUT_FORMAT = re.compile(r"Input #0, ([\w,]+), from")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_RATE = re.compile(r", ([\d.]+k?) (fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees|rotate\s*:\s*(-?\d+)")
_TIME = re.compile(r"time=\s*(\d+):(\d+):([\d.]+)")
_TEXT_DEMUXERS = {"tty", "bin", "xbin", "adf", "idf"}
_PARTIAL = ("partial file", "Invalid data found", "Decoding error", "error while decoding", "corrupt")


def _head(path: Path) -> str:
    from sora_cli.media.probe import ffmpeg_exe

    return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                          text=True, errors="replace").stderr


def _rate_of(text: str) -> float | None:
    found = {kind: value for value, kind in _RATE.findall(text)}
    for kind in ("fps", "tbr"):  # fps is ffmpeg's average rate; tbr its guess when there is none
        value = found.get(kind)
        if value and not value.endswith("k") and float(value) > 0:
            return float(value)
    return None


def _rate_fraction(fps: float) -> Fraction:
    """An exact rate for ffmpeg: 29.97 (printed rounded) is really 30000/1001."""
    for base in (24, 30, 48, 60, 120):
        if abs(fps - base * 1000 / 1001) < 0.006:
            return Fraction(base * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def read_video(path: Path, *, fps: float | None = None, max_seconds: float | None = None,
               tail: bool = False) -> VideoInput:
    """Decode a clip at a constant rate (`fps`, or the file's average rate); keep its first or last `max_seconds`."""
    import numpy as np

    from sora_cli.media.probe import ffmpeg_exe

    if fps is not None and not (isinstance(fps, int | float) and math.isfinite(fps) and 0 < fps <= 240):
        raise UsageError(f"fps must be a number between 0 and 240, not {fps!r}")
    if max_seconds is not None and not (isinstance(max_seconds, int | float) and max_seconds > 0):
        raise UsageError(f"max seconds must be a positive number, not {max_seconds!r}")
    path = _check_file(path, "video")
    head = _head(path)
    # a song's cover art is a one-picture "video" stream: skip it, so an mp3 or m4a reads as audio only
    video = next((found for found in _STREAM_VIDEO.finditer(head)
                  if "attached pic" not in head[found.start():].splitlines()[0]), None)
    container = _INPUT_FORMAT.search(head)
    if "moov atom not found" in head:  # an MP4 whose writer stopped before its index was written
        raise InputError(f"video {path} is truncated or corrupt (moov atom not found: the MP4 was not fully written)")
    if not container:
        reason = _ffmpeg_reason(head)
        raise InputError(f"video {path} is not a video ffmpeg can read{f' ({reason})' if reason else ''}")
    demuxer = container[1].split(",")[0]
    if demuxer in _TEXT_DEMUXERS:  # ffmpeg plays any .txt as ANSI art: a "video" nobody means
        raise InputError(f"video {path} is a text file, not a video")
    if not video:
        raise InputError(f"video {path} has no video stream{' (audio only)' if _STREAM_AUDIO.search(head) else ''}")
    if demuxer == "image2" or demuxer.endswith("_pipe"):
        # a single still decodes as a 1-frame "video"; say so rather than continue from a photo by accident
        raise InputError(f"video {path} is a still image, not a video (give it as an image input)")
    video_line = head[video.start():].splitlines()[0]
    rate = _rate_fraction(fps) if fps is not None else None
    if rate is None:
        own = _rate_of(video_line)
        if own is None:
            raise InputError(f"video {path} has no frame rate ffmpeg can tell; give the fps to sample it at")
        rate = _rate_fraction(own)
    width, height = int(video[3]), int(video[4])
    rotation = _ROTATION.search(head[video.start():])
    if rotation and round(abs(float(rotation[1] or rotation[2]))) % 180 == 90:
        width, height = height, width  # ffmpeg autorotates phone clips: the frames come out transposed
    found = _DURATION.search(head)
    duration = int(found[1]) * 3600 + int(found[2]) * 60 + float(found[3]) if found else None

    frame_bytes = width * height * 3
    wanted = None
    if max_seconds is not None:
        wanted = max(1, math.floor(max_seconds * rate + 1e-6))
    expected = wanted if wanted is not None else (math.ceil(duration * rate) if duration else None)
    if expected is not None and expected * frame_bytes > MAX_VIDEO_BYTES:
        raise InputError(_too_long(path, expected, width, height))

    seek = 0.0
    if tail and wanted is not None and duration:
        # decode from a little before the last `max_seconds` to the end and keep the last frames; the
        # margin absorbs header durations that overstate the video (a longer audio track)
        seek = max(0.0, duration - wanted / rate - 2.0)
    frames, count, errors = _decode(ffmpeg_exe(), path, int(video[1]), rate, width, height, seek, wanted, tail,
                                    frame_bytes)
    if not frames and seek > 0:  # the header lied about the end: read the whole clip instead
        seek = 0.0
        frames, count, errors = _decode(ffmpeg_exe(), path, int(video[1]), rate, width, height, seek, wanted, tail,
                                    frame_bytes)
    if errors:
        raise InputError(f"video {path} is truncated or corrupt ({errors})")
    if not frames:
        raise InputError(f"video {path} has no video frames ffmpeg can decode")
    start = seek + (count - len(frames)) / rate if tail else 0.0
    used = len(frames) / rate
    if duration is None:
        duration = _measure_duration(path) or start + used
    return VideoInput(
        frames=np.stack(frames), fps=float(rate), width=width, height=height, duration=duration,
        start=float(start), used_seconds=float(used), has_audio=_STREAM_AUDIO.search(head) is not None,
    )


def _decode(exe: str, path: Path, stream: int, rate: Fraction, width: int, height: int, seek: float, wanted: int | None,
            tail: bool, frame_bytes: int) -> tuple[list[Any], int, str]:
    """Raw RGB frames through a pipe: (frames kept, frames decoded, first decode error or '')."""
    import numpy as np

    cmd = [exe, "-hide_banner", "-nostdin", "-v", "error"]
    if seek > 0:
        cmd += ["-ss", f"{seek:.3f}"]  # input seeking: fast, and still frame-accurate when transcoding
    # the fps filter gives a constant rate whatever the input's timing (variable-rate phone clips included);
    # the forced scale keeps the pipe's frame size what we computed even if rotation metadata was misread
    cmd += ["-i", str(path), "-map", f"0:{stream}", "-an", "-sn", "-dn",
            "-vf", f"fps={rate},scale={width}:{height}", "-pix_fmt", "rgb24", "-f", "rawvideo"]
    if wanted is not None and not tail:
        cmd += ["-frames:v", str(wanted)]
    cmd.append("-")
    kept: deque[Any] | list[Any] = deque(maxlen=wanted) if tail and wanted is not None else []
    count = 0
    limit = MAX_VIDEO_BYTES // frame_bytes
    with tempfile.TemporaryFile() as log:
        # stderr to a file, not a pipe: a chatty ffmpeg can never block on a full stderr pipe
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        try:
            while True:
                raw = process.stdout.read(frame_bytes)
                if len(raw) < frame_bytes:
                    break
                kept.append(np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3))
                count += 1
                if not tail and len(kept) > limit:
                    raise InputError(_too_long(path, count, width, height))
            returncode = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    errors = _decode_errors(text)
    if returncode != 0 and not errors:
        errors = _ffmpeg_reason(text) or f"ffmpeg exit status {returncode}"
    return list(kept), count, errors


def _decode_errors(log: str) -> str:
    for line in log.splitlines():
        if any(marker.lower() in line.lower() for marker in _PARTIAL):
            return _strip_tag(line)
    return ""


def _ffmpeg_reason(text: str) -> str:
    """ffmpeg's own last words, without its [tag @ 0x...] prefixes."""
    lines = [_strip_tag(line) for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Invalid data" in line or "No such file" in line:
            return line.split(": ", 1)[-1] if line.startswith("Error opening input") else line
    return lines[-1] if lines else ""


def _strip_tag(line: str) -> str:
    return _one_line(re.sub(r"\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", line).strip())


def _too_long(path: Path, count: int, width: int, height: int) -> str:
    return (f"video {path} is too long to load whole ({count} frames of {width}x{height}, "
            f"over {MAX_VIDEO_BYTES >> 30} GiB decoded); use a shorter part of it")


def _measure_duration(path: Path) -> float | None:
    """Duration when the header has none: copy the video packets to the null muxer and read the last time=."""
    from sora_cli.media.probe import ffmpeg_exe

    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                          "-f", "null", "-"], capture_output=True, text=True, errors="replace").stderr
    times = _TIME.findall(out)
    if not times:
        return None
    hours, minutes, seconds = times[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
