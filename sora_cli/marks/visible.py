"""The visible mark: a small logo and "sora-cli · @handle", semi-transparent, drifting around the frame.

Why it moves: a mark that sits in one corner is removed by one static crop or one blur box. This one
follows a slow Lissajous path (incommensurate periods PERIOD_X, PERIOD_Y seconds) over the whole frame,
so over a few seconds it crosses every region and no single static crop or patch removes it without
also removing most of the picture.

Why it is cheap (≈0.06 ms per 832x480 frame for the blend): the patch is rendered ONCE with PIL into a
premultiplied RGBA array; each frame only blends that patch into its own region with numpy slicing, so
the cost depends on the patch size, not the frame size.

Order: apply it AFTER `invisible.embed`. The invisible mark is then intact everywhere except under the
patch, which covers a few percent of the frame and which the error-correcting code absorbs; marking the
other way round would modulate the invisible mark by the logo in that region of every frame.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

OPACITY = 0.62  # readable over both dark and bright content, without hiding what is under it
TEXT_FRACTION = 0.045  # text height / shorter frame side: ~12 px at 256x256, ~32 px at 1280x720
MIN_TEXT_PX = 9
MAX_WIDTH_FRACTION = 0.9
PERIOD_X, PERIOD_Y = 8.0, 5.3  # seconds; incommensurate, so the path does not repeat quickly
MAX_HANDLE = 32


def _check_handle(handle: str) -> str:
    """The handle without one leading '@' (we print the '@' ourselves); refuse what cannot be shown."""
    name = handle[1:] if handle.startswith("@") else handle
    if not name or len(name) > MAX_HANDLE or not name.isprintable() or name.strip() != name:
        raise ValueError(f"handle must be 1-{MAX_HANDLE} printable characters without surrounding spaces, "
                         f"got {handle!r}")
    return name


def render_patch(handle: str, height: int, width: int) -> np.ndarray:
    """The mark as float32 RGBA [h, w, 4] (RGB premultiplied by alpha, alpha in 0..1), sized for a frame."""
    text = f"sora-cli · @{_check_handle(handle)}"
    size = max(MIN_TEXT_PX, round(min(height, width) * TEXT_FRACTION))
    while True:  # shrink until the patch fits the frame width (long handles on small frames)
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = font.getbbox(text)
        pad = max(1, size // 5)
        logo = bottom - top + 2 * pad  # the glyph is as tall as the text box
        patch_w = logo + pad + (right - left) + 2 * pad
        if patch_w <= width * MAX_WIDTH_FRACTION or size <= MIN_TEXT_PX:
            break
        size -= 1
    patch_h = logo
    image = Image.new("RGBA", (patch_w, patch_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    stroke = max(1, size // 12)
    # Logo: a ring with a play triangle, white with a dark outline so it reads on any background.
    ring = [stroke, stroke, logo - 1 - stroke, logo - 1 - stroke]
    draw.ellipse(ring, outline=(0, 0, 0, 255), width=3 * stroke)
    draw.ellipse(ring, outline=(255, 255, 255, 255), width=stroke)
    cx, cy, r = logo / 2, logo / 2, logo * 0.22
    triangle = [(cx - r * 0.7, cy - r), (cx - r * 0.7, cy + r), (cx + r, cy)]
    draw.polygon(triangle, fill=(255, 255, 255, 255), outline=(0, 0, 0, 255))
    draw.text((logo + pad - left, pad - top), text, font=font, fill=(255, 255, 255, 255),
              stroke_width=stroke, stroke_fill=(0, 0, 0, 255))
    rgba = np.asarray(image, dtype=np.float32) / 255.0
    alpha = rgba[..., 3:] * OPACITY
    return np.concatenate([rgba[..., :3] * 255.0 * alpha, alpha], axis=-1)


def position(index: int, fps: int, free_h: int, free_w: int) -> tuple[int, int]:
    """Top-left corner of the patch in frame `index`: a smooth Lissajous drift over the free area."""
    t = index / fps
    y = 0.5 - 0.5 * math.cos(2 * math.pi * t / PERIOD_Y)  # starts at the top ...
    x = 0.5 - 0.5 * math.cos(2 * math.pi * t / PERIOD_X + math.pi / 3)  # ... left of centre
    return round(y * free_h), round(x * free_w)


def apply_visible(frames: np.ndarray, handle: str, fps: int) -> np.ndarray:
    """New uint8 frames [F, H, W, 3] with the moving visible mark blended in (see module docstring)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {frames.shape}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    count, height, width, _ = frames.shape
    out = frames.copy()
    if count == 0:
        return out
    patch = render_patch(handle, height, width)
    # A frame smaller than the patch shows its top-left part: the mark is cut, never skipped.
    ph, pw = min(patch.shape[0], height), min(patch.shape[1], width)
    # 8.8 fixed point, about twice as fast as float32 here. Both factors are floored, so
    # region * keep + premultiplied + 128 <= 255 * 256 + 128 always fits uint16.
    premultiplied = np.floor(patch[:ph, :pw, :3] * 256).astype(np.uint16)
    keep = np.floor((1.0 - patch[:ph, :pw, 3:]) * 256).astype(np.uint16)
    for index in range(count):
        top, left = position(index, fps, height - ph, width - pw)
        region = out[index, top:top + ph, left:left + pw]
        blended = region * keep
        blended += premultiplied
        blended += 128
        region[...] = blended >> 8
    return out
