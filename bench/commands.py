"""What each making command costs over a plain diffusers script doing the same pipeline call.

For every command (generate, animate-image, remix, extend, generate with sound, generate --soundtrack) on its
tiny built-in model: `sora ... --quiet` (which also reads and fits the input, marks, encodes with sound, signs and
records) against a bare script that loads the same folder with `DiffusionPipeline.from_pretrained`, builds the
sibling pipeline with `from_pipe` where the task needs one, calls it with the same arguments and writes the frames
with diffusers' `export_to_video` (for extend: the image-to-video call that makes its continuation). Each a
fresh process, alternating; prints median wall times and sora/plain.

Run: .venv/bin/python bench/commands.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import SORA, bench_env, build_tiny, timed

SIZE, FPS, SECONDS, STEPS = 128, 8, 2, 4  # 17 frames (8k+1 for LTX-2 too)
FRAMES = SECONDS * FPS + 1
PLAIN = f"""\
import sys
import numpy as np
import torch
import diffusers
from diffusers import DiffusionPipeline
from diffusers.utils import export_to_video, load_image, load_video

folder, task, out, src = sys.argv[1:5]
pipe = DiffusionPipeline.from_pretrained(folder)
kwargs = dict(prompt="a lighthouse in a storm", height={SIZE}, width={SIZE}, num_inference_steps={STEPS},
              generator=torch.Generator().manual_seed(1), output_type="np")
if task == "v2v":
    pipe = diffusers.WanVideoToVideoPipeline.from_pipe(pipe)
    kwargs["video"] = load_video(src)[:{FRAMES}]
    kwargs["strength"] = 0.7
else:
    kwargs["num_frames"] = {FRAMES}
if task == "i2v":
    kwargs["image"] = load_image(src).resize(({SIZE}, {SIZE}))
if task == "audio":
    kwargs["frame_rate"] = {FPS}
frames = pipe(**kwargs).frames[0]
if task == "soundtrack":
    audio = DiffusionPipeline.from_pretrained(sys.argv[5])
    audio(prompt="rain", audio_end_in_s={SECONDS}, num_inference_steps={STEPS}, output_type="np")
export_to_video(list(np.asarray(frames)), out, fps={FPS})
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="sora-bench-") as tmp:
        root = Path(tmp)
        env = bench_env(root)
        folders = {name: build_tiny(env, name) for name in ("tiny", "tiny-i2v", "tiny-av", "tiny-audio")}
        script = root / "plain.py"
        script.write_text(PLAIN)
        photo = root / "photo.png"
        Image.new("RGB", (300, 200), (40, 120, 200)).save(photo)
        clip = root / "clip.mp4"
        common = ["--size", f"{SIZE}x{SIZE}", "--fps", str(FPS), "--steps", str(STEPS), "--seed", "1", "--quiet"]
        subprocess.run([str(SORA), "generate", "a lighthouse", "--seconds", str(SECONDS), "-o", str(clip), *common],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        out = str(root / "out.mp4")
        cases = {
            "generate": ([str(SORA), "generate", "a lighthouse in a storm", "--seconds", str(SECONDS)],
                         ("tiny", "t2v", "-")),
            "animate-image": ([str(SORA), "animate-image", str(photo), "a lighthouse in a storm",
                               "--seconds", str(SECONDS)], ("tiny-i2v", "i2v", str(photo))),
            "remix": ([str(SORA), "remix", str(clip), "a lighthouse in a storm"], ("tiny", "v2v", str(clip))),
            "extend": ([str(SORA), "extend", str(clip), "a lighthouse in a storm", "--seconds", str(SECONDS)],
                       ("tiny-i2v", "i2v", str(photo))),
            "generate (tiny-av, sound)": ([str(SORA), "generate", "a lighthouse in a storm", "--model", "tiny-av",
                                           "--seconds", str(SECONDS)], ("tiny-av", "audio", "-")),
            "generate --soundtrack": ([str(SORA), "generate", "a lighthouse in a storm", "--soundtrack", "rain",
                                       "--seconds", str(SECONDS)], ("tiny", "soundtrack", "-")),
        }
        print(f"{'command':<28}{'sora s':>9}{'plain s':>9}{'ratio':>8}")
        load = os.getloadavg()[0]
        for name, (sora_args, (model, task, src)) in cases.items():
            sora_cmd = [*sora_args, "-o", out, *common]
            plain_cmd = [sys.executable, str(script), str(folders[model]), task, out, src, str(folders["tiny-audio"])]
            sora_t, plain_t = [], []
            for run in range(args.runs):
                order = ((sora_t, sora_cmd), (plain_t, plain_cmd))
                for bucket, cmd in order if run % 2 == 0 else order[::-1]:
                    bucket.append(timed(cmd, env)[0])
                    Path(out).unlink()
            s, p = statistics.median(sora_t), statistics.median(plain_t)
            print(f"{name:<28}{s:>9.2f}{p:>9.2f}{s / p:>8.2f}")
            load = max(load, os.getloadavg()[0])
    print(f"\nmedian wall of {args.runs} fresh-process runs each; 1-min load average up to {load:.1f} "
          f"on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
