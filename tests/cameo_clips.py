"""Test clips for cameo enrolment, made from skimage.data photos (no camera, no download).

- `head()`: the astronaut photo (Eileen Collins) cropped to 300x300 around her face: one frontal face.
- `turned(img, deg)`: a simulated head turn. A flat warp (a perspective tilt of the whole picture) moves every
  point the same way and reads as almost no yaw, which is exactly what the liveness check relies on, so a turn is
  simulated as the face painted on a vertical cylinder that rotates by `deg` about its axis: the middle of the
  face (the nose) moves further than its edges, as on a real head. Positive = the person's own left.
  Measured with liveness.yaw_degrees: +-35 degrees of cylinder read about +-15, +-15 read about +-5.
- `tilted(img, deg)`: the photo itself held at an angle (a flat card rotated about a vertical axis, seen by a
  pinhole camera): the "photo of a photo" attack. Reads under 3 degrees of yaw at any tilt up to 50.
- `stranger()`: another person, an LFW face from skimage.data.lfw_subset() upscaled to 300x300.
- `picture_mp4(picture, path)`: a 1 s H.264 file of a still picture, slowly zoomed (server characters).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NOSE_X = 155.0  # the nose tip's x in head(), from the 68-point landmarks
RADIUS = 65.0  # the cylinder's radius: 0.75 of the detector's face box width (86 px)


def head() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[0:300, 70:370])


def turned(img: np.ndarray, deg: float, cx: float = NOSE_X, radius: float = RADIUS) -> np.ndarray:
    phi = np.radians(deg)
    width = img.shape[1]
    xs = np.arange(width, dtype=np.float64)
    dx = xs - cx
    inside = np.abs(dx) < radius
    theta = np.arcsin(np.clip(dx / radius, -1, 1)) - phi  # the angle on the cylinder the pixel shows
    visible = np.abs(theta) < np.pi / 2
    src = np.where(visible, cx + radius * np.sin(theta), cx + radius * np.sign(theta))
    src = np.where(inside, src, xs)
    i0 = np.clip(np.floor(src).astype(int), 0, width - 2)
    frac = (src - i0)[None, :, None]
    out = img[:, i0].astype(np.float64) * (1 - frac) + img[:, i0 + 1].astype(np.float64) * frac
    return np.ascontiguousarray(out.round().astype(np.uint8))


def tilted(img: np.ndarray, deg: float, focal: float = 600.0) -> np.ndarray:
    from skimage.transform import ProjectiveTransform, warp

    h, w = img.shape[:2]
    a, cx, cy = np.radians(deg), w / 2, h / 2
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    seen = [[cx + focal * (x - cx) * np.cos(a) / (focal + (x - cx) * np.sin(a)),
             cy + focal * (y - cy) / (focal + (x - cx) * np.sin(a))] for x, y in corners]
    transform = ProjectiveTransform.from_estimate(np.array(seen), corners)
    return np.ascontiguousarray((warp(img, transform, output_shape=(h, w)) * 255).round().astype(np.uint8))


def stranger(index: int = 0) -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    gray = data.lfw_subset()[index]
    big = (resize(gray, (300, 300)) * 255).astype(np.uint8)
    return np.ascontiguousarray(np.stack([big] * 3, axis=-1))


def turning_clip(turns: tuple[str, ...] | list[str], img: np.ndarray | None = None,
                 peaks: tuple[float, ...] = (28.0, 31.0, 34.0), cx: float = NOSE_X,
                 radius: float = RADIUS) -> np.ndarray:
    """Frontal, then for each turn: half-way, a hold over `peaks` degrees of cylinder, half-way, frontal.

    The hold spans a few angles because the 68-point fit is jumpy frame to frame on a warped photo: -28..-34
    reads -9..-12 degrees (a real head reads far more: its nose stands out of the face).
    """
    img = head() if img is None else img
    frames = [img, img]
    for turn in turns:
        sign = 1 if turn == "left" else -1
        half = turned(img, sign * peaks[0] / 2, cx, radius)
        frames += [half] + [turned(img, sign * p, cx, radius) for p in peaks] + [half, img]
    return np.stack(frames)


def still_clip(count: int = 12, img: np.ndarray | None = None) -> np.ndarray:
    img = head() if img is None else img
    return np.stack([img] * count)


def tilted_clip(turns: tuple[str, ...] | list[str], img: np.ndarray | None = None) -> np.ndarray:
    """A photo of the face held up and tilted as the challenge asks."""
    img = head() if img is None else img
    frames = [img, img]
    for turn in turns:
        sign = 1 if turn == "left" else -1
        frames += [tilted(img, sign * 20), tilted(img, sign * 40), tilted(img, sign * 20), img]
    return np.stack(frames)


def two_faces_clip(count: int = 6) -> np.ndarray:
    face = head()[50:250, 50:250]  # her face, 200x200
    pair = np.concatenate([face, face[:, ::-1]], axis=1)
    return np.stack([np.ascontiguousarray(pair)] * count)


def no_face_clip(count: int = 6) -> np.ndarray:
    from skimage import data

    return np.stack([np.ascontiguousarray(data.chelsea()[:300, :300])] * count)


def write_clip(frames: np.ndarray, path: Path, fps: float = 8.0) -> Path:
    """An H.264 MP4 through the project's own encoder, so enrolment reads it as a user's clip."""
    from sora_cli.media.encode import encode_mp4

    encode_mp4(frames, fps, path)
    return path


def picture_mp4(picture, path, size=(160, 128)) -> bytes:
    """A 1 s, 8 fps H.264 clip of a still picture, slightly zoomed over time (real ffmpeg)."""
    import imageio_ffmpeg
    import numpy as np
    from PIL import Image

    (w, h), still = size, Image.fromarray(picture).resize(size)
    writer = imageio_ffmpeg.write_frames(str(path), size, fps=8, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=16)
    writer.send(None)
    for i in range(8):
        frame = still.crop((i, i, w - i, h - i)).resize(size)
        writer.send(np.ascontiguousarray(np.asarray(frame)))
    writer.close()
    return path.read_bytes()
