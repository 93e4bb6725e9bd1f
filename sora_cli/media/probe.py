"""What ffmpeg says about a media file: codec, pixel format, size, fps, duration, frame count, audio length."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MediaInfo:
    codec: str | None
    pix_fmt: str | None
    width: int | None
    height: int | None
    fps: float | None
    duration: float | None
    frames: int | None
    has_audio: bool
    audio_codec: str | None
    audio_duration: float | None = None  # seconds of decoded audio (priming and padding removed), when measured
    audio_sample_rate: int | None = None


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


_VIDEO = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+)[^,]*, (\w+)[^,]*(?:\([^)]*\))?, (\d+)x(\d+)")
_FPS = re.compile(r"([\d.]+) fps")
_AUDIO = re.compile(r"Stream #\d+:\d+.*?: Audio: (\w+)")
_SAMPLE_RATE = re.compile(r"(\d+) Hz")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_FRAME = re.compile(r"frame=\s*(\d+)")


def probe(path: Path, count_frames: bool = True, measure_audio: bool = True) -> MediaInfo:
    exe = ffmpeg_exe()
    head = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                          errors="replace").stderr
    video = _VIDEO.search(head)
    fps = None
    if video:
        line = head[video.start():].splitlines()[0]
        found = _FPS.search(line)
        fps = float(found[1]) if found else None
    audio = _AUDIO.search(head)
    duration = _DURATION.search(head)
    frames = None
    if video and count_frames:
        # stream copy to the null muxer counts packets without decoding
        out = subprocess.run([exe, "-hide_banner", "-nostats", "-progress", "pipe:2", "-i", str(path),
                              "-map", "0:v:0", "-c", "copy", "-f", "null", "-"],
                             capture_output=True, text=True, errors="replace").stderr
        counts = _FRAME.findall(out)
        frames = int(counts[-1]) if counts else None
    sample_rate = None
    if audio:
        found = _SAMPLE_RATE.search(head[audio.start():].splitlines()[0])
        sample_rate = int(found[1]) if found else None
    audio_duration = _audio_seconds(exe, path, sample_rate) if audio and measure_audio and sample_rate else None
    return MediaInfo(
        codec=video[1] if video else None,
        pix_fmt=video[2] if video else None,
        width=int(video[3]) if video else None,
        height=int(video[4]) if video else None,
        fps=fps,
        duration=(int(duration[1]) * 3600 + int(duration[2]) * 60 + float(duration[3])) if duration else None,
        frames=frames,
        has_audio=audio is not None,
        audio_codec=audio[1] if audio else None,
        audio_duration=audio_duration,
        audio_sample_rate=sample_rate,
    )


def _audio_seconds(exe: str, path: Path, sample_rate: int) -> float | None:
    """Decode the first audio stream to mono 16-bit PCM and count samples: exact, unlike container durations."""
    process = subprocess.Popen([exe, "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0",
                                "-ac", "1", "-f", "s16le", "-acodec", "pcm_s16le", "-"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    total = 0
    try:
        while chunk := process.stdout.read(1 << 20):
            total += len(chunk)
    finally:
        process.stdout.close()
        process.wait()
    return total / 2 / sample_rate if total else None


if __name__ == "__main__":  # `python -m sora_cli.media.probe FILE`: the facts ffmpeg reports
    import sys

    for arg in sys.argv[1:]:
        info = probe(Path(arg))
        print(f"{arg}: {info.codec} {info.pix_fmt} {info.width}x{info.height} {info.fps:g} fps, "
              f"{info.frames} frames, {info.duration:.2f} s, audio: {info.audio_codec or 'none'}"
              + (f" {info.audio_sample_rate} Hz {info.audio_duration:.3f} s" if info.audio_duration else ""))
