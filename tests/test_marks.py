"""Watermarks: invisible mark round trips through the real ffmpeg, its false-positive bound, the visible mark.

Clips are synthetic (sora_cli/marks/synth.py): photo-like content with a panning camera, the smooth
drifting noise the tiny model renders, plain noise and flat colour. Transforms are real ffmpeg runs
starting from the file sora-cli writes (H.264 crf 18).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sora_cli.marks import ALGORITHM, Detection, apply_visible, code, detect, embed, new_content_id, pattern, sync
from sora_cli.marks import invisible as inv
from sora_cli.marks.attacks import TRANSFORMS, has_encoder, transform
from sora_cli.marks.synth import clip

TINY_ID = 0x5EED_0000_0000_0001
REAL_ID = 0x0123_4567_89AB_CDEF


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255**2 / mse)


@pytest.fixture(scope="module")
def tiny() -> np.ndarray:
    """What the tiny built-in model makes: smooth drifting noise, 256x256, 17 frames (1 s at 16 fps)."""
    return embed(clip("smooth", 1, 17, 256, 256), TINY_ID)


@pytest.fixture(scope="module")
def realistic() -> np.ndarray:
    """Photo-like content with a panning camera at 832x480 (embedding scale 2)."""
    return embed(clip("natural", 1, 9, 480, 832), REAL_ID)


def needs(name: str) -> None:
    if name.startswith("h265") and not has_encoder("libx265"):
        pytest.skip("the bundled ffmpeg has no libx265")


def test_round_trip_on_clean_frames_with_psnr() -> None:
    for kind, shape in [("natural", (17, 256, 256)), ("smooth", (9, 128, 128)), ("natural", (9, 480, 832))]:
        frames = clip(kind, 7, *shape)
        marked = embed(frames, TINY_ID)
        assert marked.shape == frames.shape and marked.dtype == np.uint8
        assert psnr(frames, marked) > 35.0, kind
        found = detect(marked)
        assert found.present and found.content_id == TINY_ID, (kind, found.details)
        assert found.false_positive_rate <= inv.TARGET_FPR and found.confidence >= 1 - inv.TARGET_FPR
        assert found.frames_used == shape[0]


@pytest.mark.parametrize("name", [n for n in TRANSFORMS if n != "h264-crf35"])
def test_tiny_clip_survives(tiny: np.ndarray, name: str) -> None:
    needs(name)
    found = detect(transform(tiny, name))
    assert found.present and found.content_id == TINY_ID, found.details


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_realistic_clip_survives(realistic: np.ndarray, name: str) -> None:
    needs(name)
    decoded = transform(realistic, name)
    found = detect(decoded)
    assert found.present and found.content_id == REAL_ID, found.details
    if name == "half-size":
        assert decoded.shape[1:3] == (240, 416) and abs(found.details["scale"] - 1.0) < 0.01
    if name == "fps-30to24":
        assert decoded.shape[0] < realistic.shape[0]


def test_visible_mark_on_top_keeps_the_invisible_one(realistic: np.ndarray) -> None:
    found = detect(transform(apply_visible(realistic, "alice", fps=30), "h264-crf28"))
    assert found.content_id == REAL_ID


@pytest.mark.parametrize("kind", ["natural", "smooth", "noise", "flat"])
def test_unmarked_clips_are_absent(kind: str) -> None:
    frames = clip(kind, 3, 17, 192, 256)
    for candidate in (frames, transform(frames, "h264-crf23")):
        found = detect(candidate)
        assert not found.present and found.content_id is None, found.details
        assert found.details["z"] < inv.thresholds()["with_id"]


def test_threshold_false_positive_rate_is_analytic_and_tiny() -> None:
    limits = inv.thresholds()
    assert inv.false_positive_bound(limits["with_id"], with_id=True) <= inv.TARGET_FPR <= 1e-9
    assert inv.false_positive_bound(limits["without_id"], with_id=False) <= inv.TARGET_FPR
    assert 6.5 < limits["with_id"] < limits["without_id"] < 9.5
    # The bound is the union bound over every hypothesis the search may test.
    assert sync.hypotheses() == sync.scale_grid().size * pattern.TILE**2
    z = 7.0
    assert inv.tail(z) <= math.exp(-z * z / 2)
    assert inv.false_positive_bound(z, with_id=False) == pytest.approx(sync.hypotheses() * inv.tail(z))


def test_null_distribution_over_random_keys_is_within_the_bound() -> None:
    """Per hypothesis: z of unmarked content against many random keys is (sub-)Gaussian as claimed."""
    rng = np.random.default_rng(11)
    values = []
    for seed in range(8):
        frames = clip(["natural", "smooth", "noise", "flat"][seed % 4], 100 + seed, 9, 128, 128)
        residual = sync.highpass(sync.luma(frames).sum(axis=0), sync.box_width(1.0))
        sums = sync.Correlator.build(*pattern.pilot_images(pattern.layout())).cell_sums(sync.fold(residual, 1.0))
        for _ in range(150):
            lay = pattern.layout(rng.bytes(16))
            shift = tuple(int(v) for v in rng.integers(0, pattern.TILE, size=2))
            pilot = sync.cells_at(sums, shift)[lay.pilot_cells]
            norm = np.sqrt(np.sum(pilot * pilot))
            values.append(float(pilot @ lay.pilot_signs / norm) if norm > 0 else 0.0)
    values = np.array(values)
    assert abs(values.mean()) < 0.1 and 0.85 < values.std() < 1.15
    for t in (1.5, 2.0, 2.5, 3.0):
        assert np.mean(values >= t) <= inv.tail(t) + 3 * math.sqrt(inv.tail(t) / values.size)


def test_no_false_positive_over_random_keys() -> None:
    """The whole detector (all scales and shifts) under random keys: never present, z_max as bounded."""
    rng = np.random.default_rng(5)
    marked = embed(clip("natural", 2, 9, 128, 128), TINY_ID)  # marked, but with the public key
    z_max = []
    for index in range(18):
        frames = marked if index % 3 == 0 else clip(["natural", "smooth"][index % 2], 200 + index, 9, 128, 128)
        found = detect(frames, key=rng.bytes(16))
        assert not found.present and found.content_id is None
        z_max.append(found.details["z"])
    # Where the union bound says P(z_max >= u) <= 0.5, at most about half may reach it (here: none does).
    u = next(t for t in np.arange(3.0, 8.0, 0.01) if inv.false_positive_bound(t, with_id=False) <= 0.5)
    assert np.mean(np.array(z_max) >= u) <= 0.5


@pytest.mark.parametrize("frames", [
    np.zeros((1, 128, 128, 3), np.uint8),
    np.full((3, 16, 16, 3), 200, np.uint8),
    np.zeros((0, 64, 64, 3), np.uint8),
    np.random.default_rng(0).integers(0, 256, (2, 65, 97, 3), dtype=np.uint8),
], ids=["one-frame", "16x16", "no-frames", "odd-size"])
def test_tiny_and_odd_inputs_do_not_crash(frames: np.ndarray) -> None:
    marked = embed(frames, new_content_id())
    assert marked.shape == frames.shape
    found = detect(marked)
    assert isinstance(found, Detection)
    if frames.shape[0] == 0 or min(frames.shape[1:3]) < inv.MIN_SIDE:
        assert not found.present and "too small" in found.details["reason"]


def test_greyscale_layouts_are_detected() -> None:
    marked = embed(np.repeat(clip("smooth", 4, 9, 128, 128)[..., :1], 3, axis=-1), TINY_ID)
    assert detect(marked[..., 0]).content_id == TINY_ID
    assert detect(marked[..., :1]).content_id == TINY_ID


def test_bad_inputs_are_refused() -> None:
    frames = clip("flat", 0, 2, 64, 64)
    with pytest.raises(ValueError, match="uint8"):
        embed(frames.astype(np.float32), 1)
    with pytest.raises(ValueError, match="64-bit"):
        embed(frames, 1 << 64)
    with pytest.raises(ValueError, match="strength"):
        embed(frames, 1, strength=0)
    with pytest.raises(ValueError, match="shaped"):
        detect(np.zeros((4, 4), np.uint8))


def test_public_api() -> None:
    assert ALGORITHM == "org.sora-cli.watermark.ss.v1"
    ids = {new_content_id() for _ in range(50)}
    assert len(ids) == 50 and all(0 <= i < 1 << 64 for i in ids)
    found = detect(clip("flat", 1, 2, 64, 64))
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.present = True  # type: ignore[misc]
    assert np.array_equal(pattern.layout().pilot_signs, pattern.layout(pattern.PUBLIC_KEY).pilot_signs)


def test_code_corrects_errors_and_crc_rejects_garbage() -> None:
    rng = np.random.default_rng(3)
    word = code.encode(code.id_to_bits(REAL_ID))
    assert word.size == code.CODE_BITS
    noisy = word + rng.normal(0, 0.8, word.size)
    assert code.bits_to_id(code.viterbi(noisy)) == REAL_ID
    passed = sum(code.bits_to_id(code.viterbi(rng.normal(size=word.size))) is not None for _ in range(200))
    assert passed == 0  # expected 200 / 65536


def test_visible_mark_moves_and_leaves_most_of_the_frame_alone() -> None:
    frames = clip("natural", 5, 48, 256, 256)
    marked = apply_visible(frames, "@alice", fps=16)
    changed = np.any(marked != frames, axis=-1)  # [F, H, W]
    assert changed.any(axis=(1, 2)).all()  # on every frame
    assert changed.mean(axis=(1, 2)).max() < 0.10  # a small patch
    centres = [np.argwhere(c).mean(axis=0) for c in changed[::16]]
    assert min(np.linalg.norm(a - b) for i, a in enumerate(centres) for b in centres[i + 1:]) > 10
    assert np.array_equal(marked[:, changed.sum(0) == 0], frames[:, changed.sum(0) == 0])


def test_visible_mark_scales_with_the_frame() -> None:
    from sora_cli.marks.visible import render_patch

    small, large = render_patch("bob", 256, 256), render_patch("bob", 720, 1280)
    assert 10 <= small.shape[0] <= 20 and 28 <= large.shape[0] <= 48
    assert render_patch("x" * 32, 256, 256).shape[1] <= 0.9 * 256  # long handles shrink the text
    assert apply_visible(np.zeros((2, 24, 40, 3), np.uint8), "x" * 32, fps=8).shape == (2, 24, 40, 3)
    with pytest.raises(ValueError, match="handle"):
        apply_visible(np.zeros((1, 64, 64, 3), np.uint8), "", fps=8)
