"""A contact sheet: the feed as one PNG a person can look at (thumbnail, caption, author and why, per tile)."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

TILE_W, THUMB_H, TEXT_H, PAD = 240, 135, 58, 8


@dataclass(frozen=True)
class Tile:
    thumbnail: Path | None  # None: a grey placeholder
    title: str
    subtitle: str


def contact_sheet(tiles: Sequence[Tile], target: Path, columns: int = 4) -> Path:
    """Write the sheet to `target` (PNG, written beside it and renamed when whole)."""
    from PIL import Image, ImageDraw, ImageFont, ImageOps

    from sora_cli.media.encode import write_bytes

    columns = max(1, min(columns, len(tiles) or 1))
    rows = max(1, -(-len(tiles) // columns))
    sheet = Image.new("RGB", (columns * (TILE_W + PAD) + PAD, rows * (THUMB_H + TEXT_H + PAD) + PAD), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, tile in enumerate(tiles):
        x = PAD + (index % columns) * (TILE_W + PAD)
        y = PAD + (index // columns) * (THUMB_H + TEXT_H + PAD)
        picture = None
        if tile.thumbnail is not None:
            try:
                with Image.open(tile.thumbnail) as img:
                    picture = ImageOps.pad(img.convert("RGB"), (TILE_W, THUMB_H), color=(0, 0, 0))
            except OSError:
                picture = None
        if picture is None:
            picture = Image.new("RGB", (TILE_W, THUMB_H), (70, 70, 70))
        sheet.paste(picture, (x, y))
        lines = textwrap.wrap(f"{index + 1}. {tile.title}", width=38)[:2] + [tile.subtitle[:40]]
        for n, line in enumerate(lines):
            draw.text((x + 2, y + THUMB_H + 4 + n * 17), line, fill=(235, 235, 235) if n < 2 else (160, 200, 255),
                      font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    write_bytes(buffer.getvalue(), target)
    return target
