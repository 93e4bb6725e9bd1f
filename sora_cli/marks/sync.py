"""Finding the mark's geometry in a decoded clip: high-pass, fold onto the tile, search scale and shift.

Resynchronisation design. The pattern is a TILE-periodic tiling anchored at the frame's top-left, so:

- A crop only translates the tiling. Folding the frame modulo the tile period (summing every pixel into
  its position in one TILE x TILE tile) keeps all of the mark's energy and turns the translation into a
  cyclic shift, which one FFT cross-correlation with the pilot scores for all TILE**2 shifts at once.
- A resize changes the period to TILE * s. The detector maps observed pixels to reference coordinates
  (x + 0.5) / s - 0.5 for each candidate s on a fixed log grid (SCALE_MIN..SCALE_MAX, step SCALE_STEP,
  fine enough that the registration error across a whole 832x480 frame stays under half a cell), so
  folding is still a matrix product per candidate. A coarse pass on a central window (where a coarser
  scale step is tolerable) picks the neighbourhood; the fine pass uses the whole frame.
- Frames are summed before the search: the pilot is the same in every frame and the geometry is shared,
  so the pilot adds up coherently while moving content averages away.

The statistic for one (scale, shift) hypothesis is the *normalised* pilot correlation
    z = sum_j s_j y_j / sqrt(sum_j y_j**2)
over pilot cells j, where y_j is the high-passed luma summed over cell j and s_j its ±1 pilot sign.
`invisible.py` bounds its null distribution; this module only computes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sora_cli.marks.pattern import CELL, GRID, TILE

SCALE_MIN, SCALE_MAX = 0.4, 5.0  # pattern pixel -> observed pixels: embedding scale (1-4) x resize
SCALE_STEP = 0.004  # log step: 0.4 % x 416 px (half of 832) stays under half a 4-px cell
COARSE_EVERY = 6  # coarse pass: every 6th grid scale (2.4 %: <= 1.5 px error across the window) ...
COARSE_WINDOW = 256  # ... on a central window of this many pattern px (160 lost 1 in 20 480p crf-35 clips)
COARSE_KEEP = 4  # fine-search around this many coarse winners
CLIP_SIGMAS = 3.0


def scale_grid() -> np.ndarray:
    """Every scale hypothesis the detector may test; the false-positive bound counts all of them."""
    count = int(np.floor(np.log(SCALE_MAX / SCALE_MIN) / SCALE_STEP)) + 1
    return SCALE_MIN * np.exp(SCALE_STEP * np.arange(count))


def hypotheses() -> int:
    """Number of (scale, shift) hypotheses: the union bound's multiplier."""
    return scale_grid().size * TILE * TILE


def luma(frames: np.ndarray) -> np.ndarray:
    """BT.601 luma as float32 [F, H, W]; accepts [F, H, W] (already grey) and [F, H, W, C>=3]."""
    if frames.ndim == 3:
        return frames.astype(np.float32)
    if frames.shape[-1] < 3:
        return frames[..., 0].astype(np.float32)
    rgb = frames[..., :3].astype(np.float32)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


BOX_WIDTHS = (3, 5, 7, 9, 13, 17, 25, 33, 49, 65)


def box_width(scale: float) -> int:
    """High-pass box width at this scale: about three cells (from a short list, so the search reuses
    one high-passed image for many neighbouring scales)."""
    wanted = 3 * CELL * scale
    return min(BOX_WIDTHS, key=lambda width: abs(np.log(width / wanted)))


def _running_mean(image: np.ndarray, width: int, axis: int) -> np.ndarray:
    """Mean over a centred window of `width` along `axis`, the window shrinking at the edges."""
    size = image.shape[axis]
    cumulative = np.cumsum(image, axis=axis, dtype=np.float32)
    zero_shape = list(image.shape)
    zero_shape[axis] = 1
    cumulative = np.concatenate([np.zeros(zero_shape, dtype=np.float32), cumulative], axis=axis)
    index = np.arange(size)
    high = np.minimum(index + width // 2 + 1, size)
    low = np.maximum(index - width // 2, 0)
    shape = [1] * image.ndim
    shape[axis] = size
    counts = (high - low).astype(np.float32).reshape(shape)
    return (np.take(cumulative, high, axis=axis) - np.take(cumulative, low, axis=axis)) / counts


def box_mean(image: np.ndarray, width: int) -> np.ndarray:
    """Mean of `image` [..., H, W] over a `width` x `width` window (shrunk at the borders).

    Separable float32 running sums; the image mean is taken out first so the sums stay small enough
    for float32 to be exact to ~0.01 grey level even on 1080p frames.
    """
    offset = image.mean(axis=(-2, -1), keepdims=True, dtype=np.float32)
    rows = _running_mean(image.astype(np.float32) - offset, width, image.ndim - 1)
    return _running_mean(rows, width, image.ndim - 2) + offset


def _block_rms(residual: np.ndarray, width: int) -> np.ndarray:
    """Root-mean-square of `residual` over non-overlapping width x width blocks, expanded back."""
    h, w = residual.shape[-2:]
    rows, cols = -(-h // width), -(-w // width)
    pad = [(0, 0)] * (residual.ndim - 2) + [(0, rows * width - h), (0, cols * width - w)]
    energy = np.pad(residual * residual, pad, mode="edge")
    blocks = energy.reshape(*energy.shape[:-2], rows, width, cols, width).mean(axis=(-3, -1))
    expanded = np.repeat(np.repeat(blocks, width, axis=-2), width, axis=-1)
    return np.sqrt(expanded[..., :h, :w] + 1.0)


def highpass(image: np.ndarray, width: int) -> np.ndarray:
    """`image` [..., H, W] minus its local mean, divided by its local RMS, clipped at CLIP_SIGMAS.

    Subtracting the box mean removes content coarser than the cells. Dividing by the local RMS of what
    is left weights each region by how noisy it is (flat sky counts more than foliage, which after a
    crf-35 encode carries mostly coding noise); in 480p clips this triples the usable signal. Clipping
    keeps a few strong edges from dominating. All of it looks at content only, never at the key, so it
    cannot bias the statistic's null distribution.
    """
    residual = image - box_mean(image, width)
    return np.clip(residual / _block_rms(residual, width), -CLIP_SIGMAS, CLIP_SIGMAS)


def tile_positions(size: int, scale: float, start: int = 0) -> np.ndarray:
    """Tile pixel of observed pixels start..start+size-1: round((x + .5) / s - .5) mod TILE."""
    return np.floor((np.arange(start, start + size) + 0.5) / scale).astype(np.int64) % TILE


def fold(residual: np.ndarray, scale: float, top: int = 0, left: int = 0) -> np.ndarray:
    """Sum `residual` [h, w] (whose pixel (0, 0) is observed pixel (top, left)) into one TILE x TILE tile.

    A bincount rather than a one-hot matrix product: same result, and no BLAS threads, which on a
    busy 2-core machine made detection 7x slower.
    """
    rows = tile_positions(residual.shape[0], scale, top)
    cols = tile_positions(residual.shape[1], scale, left)
    index = (rows[:, None] * TILE + cols[None, :]).ravel()
    return np.bincount(index, weights=residual.ravel(), minlength=TILE * TILE).reshape(TILE, TILE)


@dataclass(frozen=True)
class Correlator:
    """FFTs of the pilot images, computed once per detection."""

    signs_hat: np.ndarray
    mask_hat: np.ndarray
    box_hat: np.ndarray

    @classmethod
    def build(cls, signs: np.ndarray, mask: np.ndarray) -> Correlator:
        box = np.zeros((TILE, TILE))
        box[:CELL, :CELL] = 1.0
        return cls(np.fft.rfft2(signs), np.fft.rfft2(mask), np.fft.rfft2(box))

    def cell_sums(self, folded: np.ndarray) -> np.ndarray:
        """B[q] = sum of `folded` over the CELL x CELL cell whose top-left corner is q (cyclic)."""
        return np.fft.irfft2(np.fft.rfft2(folded) * np.conj(self.box_hat), s=(TILE, TILE))

    def scores(self, folded: np.ndarray) -> np.ndarray:
        """Normalised pilot correlation z for every cyclic shift d (cell j read at o_j + d)."""
        sums = self.cell_sums(folded)
        numerator = np.fft.irfft2(np.fft.rfft2(sums) * np.conj(self.signs_hat), s=(TILE, TILE))
        energy = np.fft.irfft2(np.fft.rfft2(sums * sums) * np.conj(self.mask_hat), s=(TILE, TILE))
        return numerator / np.sqrt(np.maximum(energy, 1e-9))


def cells_at(sums: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """Per-cell values y_j [GRID * GRID] read from cell sums at a shift."""
    origins = np.arange(GRID) * CELL
    rows = (origins + shift[0]) % TILE
    cols = (origins + shift[1]) % TILE
    return sums[np.ix_(rows, cols)].ravel()


@dataclass(frozen=True)
class Sync:
    """The best hypothesis: pilot z, scale (observed px per pattern px) and cyclic shift in the tile."""

    z: float
    scale: float
    shift: tuple[int, int]


def _best(correlator: Correlator, residual: np.ndarray, scale: float, top: int, left: int) -> Sync:
    scores = correlator.scores(fold(residual, scale, top, left))
    index = int(np.argmax(scores))
    return Sync(float(scores.flat[index]), scale, (index // TILE, index % TILE))


def search(correlator: Correlator, summed_luma: np.ndarray) -> Sync:
    """Best (scale, shift) for a frame-summed luma image [H, W]: coarse window pass, then full frame."""
    grid = scale_grid()
    height, width = summed_luma.shape
    residuals: dict[int, np.ndarray] = {}

    def residual_for(scale: float) -> np.ndarray:
        width_ = box_width(scale)
        if width_ not in residuals:
            residuals[width_] = highpass(summed_luma, width_)
        return residuals[width_]

    coarse = []
    for index in range(0, grid.size, COARSE_EVERY):
        scale = float(grid[index])
        side_h, side_w = min(height, int(COARSE_WINDOW * scale)), min(width, int(COARSE_WINDOW * scale))
        top, left = (height - side_h) // 2, (width - side_w) // 2
        window = residual_for(scale)[top:top + side_h, left:left + side_w]
        coarse.append((_best(correlator, window, scale, top, left).z, index))
    coarse.sort(reverse=True)
    candidates = sorted({i for _, c in coarse[:COARSE_KEEP]
                         for i in range(max(0, c - COARSE_EVERY), min(grid.size, c + COARSE_EVERY + 1))})
    best = Sync(-np.inf, 1.0, (0, 0))
    for index in candidates:
        found = _best(correlator, residual_for(float(grid[index])), float(grid[index]), 0, 0)
        if found.z > best.z:
            best = found
    return best
