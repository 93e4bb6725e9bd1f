"""What one warm model buys: `sora batch` over 8 prompts against 8 separate `sora generate` calls.

Same options both ways (tiny model, 256x256, 1 s, 4 steps); each side writes 8 videos. Prints both
wall times and the speed-up of batch over separate calls (target ≥ 3x), with CPU times (user+sys),
which a busy machine disturbs less.

Run: .venv/bin/python bench/batch.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from _common import SORA, bench_env, build_tiny, timed

TARGET_SPEEDUP = 3.0
OPTIONS = ["--model", "tiny", "--size", "256x256", "--seconds", "1", "--steps", "4", "--quiet"]
PROMPTS = [
    "a red fox running through fresh snow",
    "waves breaking on a rocky shore at dusk",
    "a paper boat drifting down a rainy gutter",
    "a hummingbird hovering over a red flower",
    "city traffic at night seen from above",
    "a candle flame flickering in a dark room",
    "clouds rolling over a mountain ridge, time-lapse",
    "a cat stretching on a sunny windowsill",
]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sora-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root)
        build_tiny(env)
        prompts = root / "prompts.txt"
        prompts.write_text("\n".join(PROMPTS) + "\n", encoding="utf-8")
        # warm-up: page cache and .pyc files, so neither side pays for them
        timed([str(SORA), "generate", "warm up", *OPTIONS, "-o", str(root / "warm.mp4")], env)
        load = os.getloadavg()[0]

        # half the separate calls before the batch and half after, so a drift in machine load hits both
        batch_dir, single_dir = root / "batch", root / "single"
        single_dir.mkdir()
        calls = []
        for number, prompt in enumerate(PROMPTS, start=1):
            if number == len(PROMPTS) // 2 + 1:
                batch_s, batch_cpu = timed([str(SORA), "batch", str(prompts), "--out-dir", str(batch_dir),
                                          *OPTIONS], env)
            out = single_dir / f"{number:04d}.mp4"
            calls.append(timed([str(SORA), "generate", prompt, *OPTIONS, "-o", str(out)], env))
            load = max(load, os.getloadavg()[0])
        single_s, single_cpu = sum(c[0] for c in calls), sum(c[1] for c in calls)
        made_batch = len(list(batch_dir.glob("*.mp4")))
        made_single = len(list(single_dir.glob("*.mp4")))

    n = len(PROMPTS)
    speedup = single_s / batch_s
    print(f"{n} prompts, options: {' '.join(OPTIONS)}")
    print(f"{'way':<24}{'videos':>7}{'wall (s)':>10}{'per video':>11}{'CPU (s)':>9}")
    print(f"{'sora batch (1 process)':<24}{made_batch:>7}{batch_s:>10.2f}{batch_s / n:>11.2f}{batch_cpu:>9.1f}")
    print(f"{f'sora generate x{n}':<24}{made_single:>7}{single_s:>10.2f}{single_s / n:>11.2f}{single_cpu:>9.1f}")
    walls = [c[0] for c in calls]
    print(f"  separate calls: min {min(walls):.2f} s, max {max(walls):.2f} s; "
          f"CPU-time ratio separate/batch {single_cpu / batch_cpu:.2f}x")
    print(f"  1-min load average up to {load:.1f} on {os.cpu_count()} cores (these runs included)")
    print()
    if made_batch != n or made_single != n:
        print(f"WARNING: expected {n} videos each way, got {made_batch} (batch) and {made_single} (separate)")
    verdict = "PASS" if speedup >= TARGET_SPEEDUP and made_batch == made_single == n else "MISS"
    print(f"batch: {single_s:.2f} s separate / {batch_s:.2f} s batch = {speedup:.2f}x speed-up "
          f"(target ≥ {TARGET_SPEEDUP:g}x) -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
