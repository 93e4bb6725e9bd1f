"""Where the invisible mark's chips go: the public key schedule and the tiled ±1 cell pattern.

The mark is a TILE x TILE pixel tile (GRID x GRID cells of CELL x CELL pixels) repeated over the frame
from its top-left corner. Each cell carries +a or -a on luma. Cells are split once, for every frame:

- PILOT cells (a fixed keyed subset, fixed keyed signs, the same in every frame): the sync pattern. The
  detector finds scale and translation by correlating with it, and its correlation is the presence
  statistic whose null distribution we can bound (see `invisible.py`).
- DATA cells: each carries one of the CODE_BITS code bits, times a keyed sign. Which cell carries which
  bit, and with which sign, is re-drawn for each of SLOTS key slots; frame f uses slot (f // RUN) mod
  SLOTS.

Why a per-frame key schedule: a pattern that never changes reads as a dirty window when the camera
pans, and averaging the frames of a still shot would isolate it. Re-keying the data cells spreads each
code bit over different cells, so over different content: the content's interference (the dominant
noise) then averages out across slots instead of adding up. Why runs of RUN frames and not a new key
every frame: H.264/H.265 P-frames copy the previous frame where the change is small, so a pattern that
changes every frame is mostly thrown away at crf 28+ (measured on 128x128 clips after crf 28: ~25 %
more usable signal with runs of 4 than with a new key every frame, ~40 % more than with one key for
the whole clip; one key for the whole clip also decoded half as many ids).
The pilot stays fixed on purpose: it lets the detector sum all frames before searching for the
geometry, and it survives P-frames that copy an earlier frame.

Everything is derived with SHAKE-256 from a PUBLIC key, so anyone with sora-cli can detect the mark
(the point of a provenance mark), and the derivation does not depend on numpy's random streams, which
numpy does not promise to keep stable across versions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from sora_cli.marks.code import CODE_BITS

PUBLIC_KEY = b"sora-cli/ss-v1"
CELL = 4  # pixels per cell side at the embedding resolution: 2 px after a halving, still codable
GRID = 32  # cells per tile side: 1024 cells, room for the pilot and 2 cells per code bit
TILE = CELL * GRID  # 128 px: one whole tile fits in our smallest (128x128) clips
SLOTS = 4
RUN = 4  # frames per key slot: frame f uses slot (f // RUN) % SLOTS
EMBED_SIDE = 224  # shorter side per unit of embedding scale: 480p clips get 8-px cells, 720p 12-px
MAX_EMBED_SCALE = 4
DATA_CELLS = 2 * CODE_BITS  # 528: two cells per code bit (a 3:1 split starved the pilot on small clips)
PILOT_CELLS = GRID * GRID - DATA_CELLS  # 496


def _stream(key: bytes, label: str, count: int) -> np.ndarray:
    """`count` pseudo-random uint64 values from SHAKE-256(key, label): portable and versionless."""
    digest = hashlib.shake_256(key + b"/" + label.encode()).digest(8 * count)
    return np.frombuffer(digest, dtype=">u8").astype(np.uint64)


def _signs(key: bytes, label: str, count: int) -> np.ndarray:
    return np.where(_stream(key, label, count) & np.uint64(1), 1.0, -1.0).astype(np.float32)


@dataclass(frozen=True)
class Layout:
    """The cell roles for one key; cells are numbered row-major, cell j at (j // GRID, j % GRID)."""

    pilot_cells: np.ndarray  # [PILOT_CELLS] cell indices
    pilot_signs: np.ndarray  # [PILOT_CELLS] ±1
    data_cells: np.ndarray  # [DATA_CELLS] cell indices (same set for all slots)
    data_bits: np.ndarray  # [SLOTS, DATA_CELLS] which code bit each data cell carries in that slot
    data_signs: np.ndarray  # [SLOTS, DATA_CELLS] ±1 scrambling per slot


def slot_of(frame_index: int | np.ndarray) -> int | np.ndarray:
    """The key slot of a frame: the per-frame key schedule."""
    return (frame_index // RUN) % SLOTS


def layout(key: bytes = PUBLIC_KEY) -> Layout:
    """The (public) cell layout for `key`; tests pass other keys to measure the null distribution."""
    order = np.argsort(_stream(key, "cells", GRID * GRID), kind="stable")
    pilot_cells, data_cells = np.sort(order[:PILOT_CELLS]), np.sort(order[PILOT_CELLS:])
    bits = np.empty((SLOTS, DATA_CELLS), dtype=np.int64)
    signs = np.empty((SLOTS, DATA_CELLS), dtype=np.float32)
    spread = np.arange(DATA_CELLS) % CODE_BITS  # every code bit gets exactly 2 cells
    for slot in range(SLOTS):
        shuffle = np.argsort(_stream(key, f"slot{slot}/bits", DATA_CELLS), kind="stable")
        bits[slot] = spread[shuffle]
        signs[slot] = _signs(key, f"slot{slot}/signs", DATA_CELLS)
    return Layout(pilot_cells, _signs(key, "pilot", PILOT_CELLS), data_cells, bits, signs)


def cell_values(lay: Layout, slot: int, codeword: np.ndarray) -> np.ndarray:
    """±1 per cell [GRID * GRID] for one slot: pilot signs, and scrambled code bits on data cells."""
    values = np.empty(GRID * GRID, dtype=np.float32)
    values[lay.pilot_cells] = lay.pilot_signs
    values[lay.data_cells] = lay.data_signs[slot] * codeword[lay.data_bits[slot]]
    return values


def embed_scale(height: int, width: int) -> int:
    """Pixels per pattern pixel: 1 up to 447 px (shorter side), 2 for 480p, 3 for 720p, 4 for 1080p.

    Why: 4-px cells are the only size that fits a whole tile into a 128-px clip, but in a 480p clip an
    H.264 crf-35 encode keeps about 4x more of an 8-px pattern than of a 4-px one (its DC survives the
    8x8 transform's dead zone), and big clips have area to spare. To the detector a larger embedding
    scale is just another scale in its search.
    """
    return int(min(MAX_EMBED_SCALE, max(1, min(height, width) // EMBED_SIDE)))


def frame_pattern(cells: np.ndarray, height: int, width: int, scale: int = 1) -> np.ndarray:
    """The cell values as a [height, width] float32 pattern tiled from the top-left corner."""
    size = CELL * scale
    tile = np.repeat(np.repeat(cells.reshape(GRID, GRID), size, axis=0), size, axis=1)
    reps = (-(-height // (TILE * scale)), -(-width // (TILE * scale)))
    return np.tile(tile, reps)[:height, :width]


def pilot_images(lay: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(signs, mask) as TILE x TILE images with a value at each pilot cell's top-left pixel, else 0.

    Correlating a cell-summed residual with these gives, for every translation at once, the pilot
    statistic's numerator and its normalisation (see sync.py).
    """
    signs = np.zeros((TILE, TILE), dtype=np.float64)
    mask = np.zeros((TILE, TILE), dtype=np.float64)
    rows, cols = (lay.pilot_cells // GRID) * CELL, (lay.pilot_cells % GRID) * CELL
    signs[rows, cols] = lay.pilot_signs
    mask[rows, cols] = 1.0
    return signs, mask
