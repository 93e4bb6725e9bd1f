"""Synthetic test clips for the watermark tests and bench, made offline with numpy and PIL.

Why synthetic: tests and the bench must not download anything, and scikit-image (whose sample photos
would be the obvious choice) is not a dependency. What matters for a watermark is the *statistics* of
the content it competes with, so these clips copy them: natural photos have a ~1/f amplitude spectrum,
sharp object edges, text and flat regions; video adds a panning camera, independently moving objects
and sensor noise. `smooth_noise_clip` mimics what the tiny built-in model produces (smooth-ish noise
that drifts), and `noise_clip` / `flat_clip` are the adversarial extremes for false positives.

Every generator takes a `numpy.random.Generator`, so a test or bench row is reproducible from a seed.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

WORDS = ("sora", "fox", "snow", "river", "STOP", "cafe", "42", "north", "delai", "video")


def pink_noise(rng: np.random.Generator, height: int, width: int, beta: float = 1.0) -> np.ndarray:
    """Zero-mean, unit-std noise with a 1/f**beta amplitude spectrum (beta=1 is photo-like)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = (rng.standard_normal(radius.shape) + 1j * rng.standard_normal(radius.shape)) / radius**beta
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(height, width))
    return (field / (field.std() + 1e-12)).astype(np.float32)


def photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like RGB still (uint8): 1/f colour texture, shaded shapes with hard edges, text, a sky."""
    # Texture lives mostly in luma and varies in strength: smooth walls next to foliage-like detail.
    detail = 1.0 / (1.0 + np.exp(-2.5 * pink_noise(rng, height, width, 2.5)))
    luma = pink_noise(rng, height, width) * detail * rng.uniform(20, 45)
    chroma = np.stack([pink_noise(rng, height, width, 2.0) for _ in range(3)], axis=-1) * 18
    image = rng.uniform(70, 180, size=3).astype(np.float32) + luma[..., None] + chroma
    sky = int(height * rng.uniform(0.15, 0.35))  # a flat gradient region, where marks show most
    ramp = np.linspace(0.0, 1.0, sky, dtype=np.float32)[:, None, None]
    image[:sky] = (1 - ramp) * rng.uniform(150, 230, size=3) + ramp * image[:sky]
    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    scale = max(8, min(height, width) // 6)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(scale // 2, scale * 2)), int(rng.integers(scale // 2, scale * 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour, outline=(0, 0, 0))
        else:
            points = [(x0 + int(rng.integers(-w, w)), y0 + int(rng.integers(-h, h))) for _ in range(5)]
            draw.polygon(points, fill=colour)
    font = ImageFont.load_default(size=max(8, scale // 2))
    for _ in range(3):
        xy = (int(rng.integers(0, max(1, width - scale))), int(rng.integers(0, max(1, height - scale))))
        draw.text(xy, str(rng.choice(WORDS)), fill=(250, 250, 250), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=0.6))  # lens softness: no single-pixel aliasing
    shaded = np.asarray(canvas, dtype=np.float32) * (0.75 + 0.25 * pink_noise(rng, height, width, 2.0)[..., None])
    return np.clip(shaded, 0, 255).astype(np.uint8)


def natural_clip(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    """A panning camera over a photo, one object moving on its own, sensor noise; uint8 [F, H, W, 3]."""
    margin_y, margin_x = max(4, height // 4), max(4, width // 4)
    still = photo(rng, height + 2 * margin_y, width + 2 * margin_x)
    speed = rng.uniform(-1.0, 1.0, size=2) * np.array([margin_y, margin_x]) / max(frames, 1)
    sprite = photo(rng, max(4, height // 4), max(4, width // 4))
    sprite_at = rng.uniform(0, 1, size=2) * np.array([height - sprite.shape[0], width - sprite.shape[1]])
    sprite_speed = rng.uniform(-3.0, 3.0, size=2)
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for index in range(frames):
        oy, ox = (np.array([margin_y, margin_x]) + speed * index).round().astype(int)
        frame = still[oy:oy + height, ox:ox + width].astype(np.float32)
        sy, sx = np.clip(sprite_at + sprite_speed * index, 0, [height - sprite.shape[0], width - sprite.shape[1]])
        sy, sx = int(sy), int(sx)
        frame[sy:sy + sprite.shape[0], sx:sx + sprite.shape[1]] = sprite
        frame += rng.normal(0.0, 1.5, size=frame.shape).astype(np.float32)
        out[index] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def smooth_noise_clip(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    """Low-pass colour noise that drifts from frame to frame: what the tiny built-in model renders."""
    start = np.stack([pink_noise(rng, height, width, 2.0) for _ in range(3)], axis=-1)
    end = np.stack([pink_noise(rng, height, width, 2.0) for _ in range(3)], axis=-1)
    grain = rng.uniform(2.0, 8.0)
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for index in range(frames):
        mix = index / max(frames - 1, 1)
        frame = 128 + 45 * ((1 - mix) * start + mix * end)
        frame += rng.normal(0.0, grain, size=frame.shape)
        out[index] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def noise_clip(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    """Independent uniform noise per pixel and frame: the worst case for a correlation detector's null."""
    return rng.integers(0, 256, size=(frames, height, width, 3), dtype=np.uint8)


def flat_clip(rng: np.random.Generator, frames: int, height: int, width: int) -> np.ndarray:
    """One random flat colour (a detector must not divide by the zero variance it has)."""
    colour = rng.integers(0, 256, size=3, dtype=np.uint8)
    return np.broadcast_to(colour, (frames, height, width, 3)).copy()


GENERATORS = {
    "natural": natural_clip,
    "smooth": smooth_noise_clip,
    "noise": noise_clip,
    "flat": flat_clip,
}


def clip(kind: str, seed: int, frames: int, height: int, width: int) -> np.ndarray:
    """One clip of `kind` (see GENERATORS), reproducible from `seed`."""
    return GENERATORS[kind](np.random.default_rng(seed), frames, height, width)
