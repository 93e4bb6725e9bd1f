"""Frames in, a playable MP4 out: H.264, yuv420p, faststart, through imageio-ffmpeg's ffmpeg."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

from sora_cli.media.atomic import atomic_path, scratch_path

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


def encode_mp4(frames: Any, fps: float, path: Path, audio: Any = None, sample_rate: int | None = None) -> None:
    """Encode `frames` (uint8 [F, H, W, 3]) to `path` (a temp name: the caller renames or signs it).

    `audio`, when given, is a float numpy waveform in [-1, 1] at `sample_rate` Hz, shaped (samples,) for mono or
    (channels, samples) / (samples, channels) with 1 or 2 channels; it is trimmed or padded with silence to exactly
    len(frames) / fps seconds and stored as AAC.
    """
    import imageio_ffmpeg
    import numpy as np

    count, height, width, _ = frames.shape
    output_params = ["-crf", str(CRF), "-preset", "medium"]
    with contextlib.ExitStack() as stack:
        audio_path = None
        if audio is not None:
            if not sample_rate or sample_rate <= 0:
                raise ValueError("encode_mp4: audio needs a positive sample_rate")
            pcm = _fit_audio(audio, round(count / fps * sample_rate))
            audio_path = stack.enter_context(scratch_path(path, ".wav"))
            _write_wav(audio_path, pcm, int(sample_rate))
            output_params += ["-b:a", "128k" if pcm.shape[1] == 1 else "192k"]
            if int(sample_rate) not in _AAC_RATES:
                output_params += ["-ar", "48000"]  # AAC has a fixed list of rates
        writer = imageio_ffmpeg.write_frames(
            str(path), (width, height), fps=fps, codec="libx264", pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p", quality=None, macro_block_size=1, ffmpeg_log_level="error",
            output_params=output_params + ["-movflags", "+faststart", "-f", "mp4"],
            audio_path=None if audio_path is None else str(audio_path), audio_codec="aac",
        )
        writer.send(None)
        try:
            for index in range(count):
                writer.send(np.ascontiguousarray(frames[index]))
        finally:
            writer.close()


_AAC_RATES = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}


def _fit_audio(audio: Any, samples: int) -> Any:
    """A waveform -> int16 [samples, channels], cut or padded with silence to exactly `samples`."""
    import numpy as np

    wave = np.asarray(audio)
    if wave.dtype.kind != "f" and wave.dtype != np.int16:
        raise ValueError(f"audio must be a float (or int16) numpy array, got {wave.dtype}")
    if wave.ndim == 1:
        wave = wave[:, None]
    elif wave.ndim == 2:
        # the short axis is the channels axis; a (2, 2) array is read as (channels, samples)
        if wave.shape[0] <= 2:
            wave = wave.T
        elif wave.shape[1] > 2:
            raise ValueError(f"audio must be mono or stereo, got shape {wave.shape}")
    else:
        raise ValueError(f"audio must be shaped (samples,), (channels, samples) or (samples, channels), "
                         f"got {wave.shape}")
    if wave.dtype == np.int16:
        pcm = wave
    else:
        floats = np.nan_to_num(wave.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
        pcm = np.round(np.clip(floats, -1.0, 1.0) * 32767.0).astype(np.int16)
    out = np.zeros((samples, pcm.shape[1]), dtype=np.int16)
    keep = min(samples, pcm.shape[0])
    out[:keep] = pcm[:keep]
    return out


def _write_wav(path: Path, pcm: Any, sample_rate: int) -> None:
    import wave

    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(pcm.shape[1])
        fh.setsampwidth(2)
        fh.setframerate(sample_rate)
        fh.writeframes(pcm.astype("<i2").tobytes())


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
