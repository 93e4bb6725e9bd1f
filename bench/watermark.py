"""How fast, how invisible and how robust the watermarks are, and how often they are seen where they are not.

Measures, on this machine's CPU, with the real bundled ffmpeg and synthetic clips (sora_cli/marks/synth.py):
1. speed: invisible `embed` and `detect` in ms per frame at 480x832 (33 frames of photo-like content), and
   the visible mark's per-frame blend (the frame copy excluded);
2. PSNR of the invisibly marked frames against the originals, per clip set;
3. robustness: for every transform (sora-cli's own crf-18 file, then H.264 crf 23/28/35, half size,
   30 -> 24 fps, H.265 crf 28, a 10 % crop of width and height at a random offset per clip) and every
   clip set, the raw code-bit accuracy before error
   correction (at the geometry the detector found; 0.5 is chance) and the share of clips whose 64-bit
   id came back exactly (target 100 %);
4. false detections on unmarked clips (photo-like, smooth, noise, flat; raw and after crf 23; target 0),
   with the largest pilot z seen against the threshold and the analytic false-positive bound.

Run: .venv/bin/python bench/watermark.py [--quick] [--clips N] [--unmarked N]
(defaults: 20 clips per set and transform, 200 unmarked clips; --quick: 4 and 40; ~6 min and ~1 min on
2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sora_cli.marks import apply_visible, code, detect, embed, invisible  # noqa: E402
from sora_cli.marks.attacks import TRANSFORMS, crop_filter, has_encoder, transform  # noqa: E402
from sora_cli.marks.synth import clip  # noqa: E402

SETS = {  # name: (content kind, frames, height, width)
    "realistic 480x832x17": ("natural", 17, 480, 832),
    "tiny-model 256x256x17": ("smooth", 17, 256, 256),
    "photo-like 256x256x17": ("natural", 17, 256, 256),
    "tiny-model 128x128x17": ("smooth", 17, 128, 128),
}
NAMES = ["source", *TRANSFORMS]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def timed(function, repeats: int = 5) -> float:
    """Median seconds of `function()` over `repeats` runs (one warm-up run first)."""
    function()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def speed() -> None:
    frames = clip("natural", 1, 33, 480, 832)
    marked = embed(frames, 42)
    embed_s = timed(lambda: embed(frames, 42))
    detect_s = timed(lambda: detect(marked), repeats=3)
    count = frames.shape[0]
    # Per-frame blend = slope between a 1-frame and a 33-frame call (the one-off patch render cancels),
    # minus the frame copy that apply_visible makes to return new frames.
    one_s = timed(lambda: apply_visible(frames[:1], "alice", 24), repeats=9)
    all_s = timed(lambda: apply_visible(frames, "alice", 24), repeats=9)
    copy_s = timed(frames.copy, repeats=9) - timed(frames[:1].copy, repeats=9)
    visible_s = (all_s - one_s - copy_s) * count / (count - 1)
    print("speed at 480x832, 33 frames (median):")
    print(f"  invisible embed  {embed_s / count * 1e3:7.2f} ms/frame   (target <= 10)")
    print(f"  invisible detect {detect_s / count * 1e3:7.2f} ms/frame   ({detect_s:.2f} s per clip)")
    print(f"  visible blend    {visible_s / count * 1e3:7.3f} ms/frame   (frame copy excluded; render once "
          f"{one_s * 1e3:.1f} ms)")
    print(f"  PSNR of that clip: {psnr(frames, marked):.2f} dB\n")


def bit_accuracy(details: dict, content_id: int) -> float:
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(details["code_bits"]), dtype=np.uint8))[:code.CODE_BITS]
    truth = code.encode(code.id_to_bits(content_id)) < 0
    return float(np.mean(bits.astype(bool) == truth))


def one_clip(job: tuple[str, int]) -> tuple[str, float, dict[str, tuple[float, bool]]]:
    """Mark one clip of set `name`, run every transform, detect: (set, PSNR, {transform: (bits, ok)})."""
    name, seed = job
    kind, frames, height, width = SETS[name]
    original = clip(kind, 1000 + seed, frames, height, width)
    content_id = int(np.random.default_rng(seed).integers(0, 2**63)) * 2 + seed % 2
    marked = embed(original, content_id)
    rows = {}
    for transform_name in NAMES:
        if transform_name.startswith("h265") and not has_encoder("libx265"):
            continue
        args = None
        if transform_name == "crop-10pct":  # a different window per clip: any offset must resynchronise
            at = np.random.default_rng(seed + 7).uniform(0.0, 1.0, size=2)
            args = ["-vf", crop_filter(0.10, (float(at[0]), float(at[1]))), *TRANSFORMS[transform_name][2:]]
        found = detect(transform(marked, transform_name, args))
        rows[transform_name] = (bit_accuracy(found.details, content_id), found.content_id == content_id)
    return name, psnr(original, marked), rows


def robustness(clips: int, pool: Pool) -> None:
    results = pool.map(one_clip, [(name, seed) for name in SETS for seed in range(clips)])
    print(f"robustness ({clips} clips per set; raw code-bit accuracy before ECC / ids recovered exactly):")
    header = f"  {'transform':12s}" + "".join(f"{name:>25s}" for name in SETS)
    print(header)
    for transform_name in NAMES:
        cells = []
        for name in SETS:
            rows = [r[2][transform_name] for r in results if r[0] == name and transform_name in r[2]]
            if not rows:
                cells.append(f"{'n/a':>25s}")
                continue
            bits = np.mean([b for b, _ in rows])
            recovered = sum(ok for _, ok in rows)
            cells.append(f"{bits:>10.3f} {recovered:>4d}/{len(rows):<3d} {100 * recovered / len(rows):4.0f}%")
        print(f"  {transform_name:12s}" + "".join(cells))
    print("  PSNR (dB), mean / min:" + "".join(
        f"{np.mean([r[1] for r in results if r[0] == n]):>14.2f} / {min(r[1] for r in results if r[0] == n):5.2f}"
        for n in SETS))
    if not has_encoder("libx265"):
        print("  (h265: the bundled ffmpeg has no libx265)")
    print()


def one_unmarked(seed: int) -> tuple[bool, float]:
    kinds = ["natural", "smooth", "noise", "flat"]
    sizes = [(9, 128, 128), (17, 256, 256), (9, 192, 320), (9, 480, 832)]
    frames = clip(kinds[seed % 4], 50_000 + seed, *sizes[(seed // 4) % 4])
    if seed % 2:
        frames = transform(frames, "h264-crf23")
    found = detect(frames)
    return found.present, float(found.details.get("z", 0.0))


def false_positives(count: int, pool: Pool) -> None:
    results = pool.map(one_unmarked, range(count))
    present = sum(p for p, _ in results)
    limits = invisible.thresholds()
    print(f"false detections on {count} unmarked clips (natural/smooth/noise/flat, 128x128..480x832, "
          f"half re-encoded at crf 23): {present} (target 0)")
    print(f"  largest pilot z seen {max(z for _, z in results):.2f}; thresholds: id {limits['with_id']:.2f}, "
          f"mark-without-id {limits['without_id']:.2f}")
    print(f"  analytic bound per clip at the threshold: {invisible.false_positive_bound(limits['with_id'], True):.2e}"
          f" (with id), {invisible.false_positive_bound(limits['without_id'], False):.2e} (without id)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 clips per set, 40 unmarked clips")
    parser.add_argument("--clips", type=int, default=None)
    parser.add_argument("--unmarked", type=int, default=None)
    args = parser.parse_args()
    clips = args.clips or (4 if args.quick else 20)
    unmarked = args.unmarked or (40 if args.quick else 200)
    started = time.perf_counter()
    speed()
    with Pool(2) as pool:
        robustness(clips, pool)
        false_positives(unmarked, pool)
    print(f"\n(bench took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
