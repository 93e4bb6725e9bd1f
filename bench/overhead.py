"""What `sora generate` costs over a plain diffusers script doing the same work.

One tiny-model clip (256x256, 17 frames at 16 fps, 4 steps, seed 1) made N times each by
`sora generate ... --quiet` and by a bare `DiffusionPipeline.from_pretrained` + `export_to_video`
script, alternating, each a fresh process. Reports median wall times and sora/plain (target ≤ 1.15),
plus each pair's ratio and the CPU time (user+sys) of each run, which a busy machine disturbs less.

Run: .venv/bin/python bench/overhead.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from _common import SORA, bench_env, build_tiny, timed

TARGET_RATIO = 1.15
PROMPT = "a red fox running through fresh snow"
PLAIN = """\
import sys
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import export_to_video

folder, prompt, out = sys.argv[1:4]
pipe = DiffusionPipeline.from_pretrained(folder)
frames = pipe(prompt, height=256, width=256, num_frames=17, num_inference_steps=4, guidance_scale=5.0,
              generator=torch.Generator().manual_seed(1), output_type="np").frames[0]
export_to_video(frames, out, fps=16)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from sora_cli.media.probe import probe

    with tempfile.TemporaryDirectory(prefix="sora-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root)
        folder = build_tiny(env)
        script = root / "plain.py"
        script.write_text(PLAIN)
        sora_out, plain_out = root / "sora.mp4", root / "plain.mp4"
        sora_cmd = [str(SORA), "generate", PROMPT, "--model", "tiny", "--size", "256x256", "--seconds", "1",
                    "--fps", "16", "--steps", "4", "--seed", "1", "-o", str(sora_out), "--quiet"]
        plain_cmd = [sys.executable, str(script), str(folder), PROMPT, str(plain_out)]

        # check both work (and warm the page cache) before timing anything
        for name, cmd, out in (("sora", sora_cmd, sora_out), ("plain", plain_cmd, plain_out)):
            timed(cmd, env)
            info = probe(out)
            print(f"check {name:<6}{out.name}: {info.frames} frames {info.width}x{info.height} "
                  f"@ {info.fps:g} fps, {out.stat().st_size} bytes")
            if not info.frames:
                sys.exit(f"{name} made no playable video")
            out.unlink()
        print()

        sora: list[tuple[float, float]] = []
        plain: list[tuple[float, float]] = []
        load = os.getloadavg()[0]
        print(f"{'run':>4}{'sora wall':>11}{'plain wall':>11}{'ratio':>7}{'sora CPU':>10}{'plain CPU':>10}")
        for run in range(1, args.runs + 1):
            order = ((sora, sora_cmd), (plain, plain_cmd))
            for bucket, cmd in order if run % 2 else order[::-1]:
                bucket.append(timed(cmd, env))
            (sw, sc), (pw, pc) = sora[-1], plain[-1]
            print(f"{run:>4}{sw:>11.3f}{pw:>11.3f}{sw / pw:>7.3f}{sc:>10.2f}{pc:>10.2f}")
            load = max(load, os.getloadavg()[0])
    med = {name: [statistics.median(x[i] for x in runs) for i in (0, 1)]
           for name, runs in (("sora", sora), ("plain", plain))}
    paired = statistics.median(s[0] / p[0] for s, p in zip(sora, plain, strict=True))
    low = {name: [min(x[i] for x in runs) for i in (0, 1)] for name, runs in (("sora", sora), ("plain", plain))}
    for label, row in (("med", med), ("min", low)):
        print(f"{label:>4}{row['sora'][0]:>11.3f}{row['plain'][0]:>11.3f}{row['sora'][0] / row['plain'][0]:>7.3f}"
              f"{row['sora'][1]:>10.2f}{row['plain'][1]:>10.2f}")
    print()
    print(f"median of paired ratios {paired:.3f}; CPU-time ratio {med['sora'][1] / med['plain'][1]:.3f}; "
          f"1-min load average up to {load:.1f} on {os.cpu_count()} cores (these runs included)"
          + ("; others are busy too: wall times are noisy" if load > 1.25 * (os.cpu_count() or 1) else ""))
    ratio = med["sora"][0] / med["plain"][0]
    verdict = "PASS" if ratio <= TARGET_RATIO else "MISS"
    print(f"overhead: sora {med['sora'][0]:.2f} s / plain {med['plain'][0]:.2f} s = {ratio:.3f}x "
          f"(median wall, {args.runs} runs each; target ≤ {TARGET_RATIO}) -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
