"""Start-up time of the `sora` command, and what importing the CLI drags in.

Measures the wall time of `sora --help` (10 runs after 1 warm-up; median, min, max; target ≤ 0.35 s)
and checks that `import sora_cli.cli.app` leaves torch, diffusers, httpx and c2pa unimported.

Run: .venv/bin/python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import SORA, bench_env, build_tiny, timed

TARGET_S = 0.35
HEAVY = ("torch", "diffusers", "httpx", "c2pa")


def heavy_imports(env: dict[str, str]) -> list[str]:
    code = (
        "import sys, sora_cli.cli.app; "
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sora-bench-") as home:
        env = bench_env(Path(home))
        build_tiny(env)
        cmd = [str(SORA), "--help"]
        timed(cmd, env)  # warm-up: page cache, .pyc files
        times = [timed(cmd, env)[0] for _ in range(args.runs)]
        loaded = heavy_imports(env)

    median = statistics.median(times)
    print(f"sora --help, {args.runs} runs after 1 warm-up ({SORA})")
    print(f"  {'median':<8}{median:8.3f} s")
    print(f"  {'min':<8}{min(times):8.3f} s")
    print(f"  {'max':<8}{max(times):8.3f} s")
    print()
    print("heavy modules in sys.modules after `import sora_cli.cli.app`:")
    for name in HEAVY:
        print(f"  {name:<10}{'LOADED' if name in loaded else 'no'}")
    print()
    ok = median <= TARGET_S and not loaded
    verdict = "PASS" if ok else "MISS"
    print(f"startup: median {median:.3f} s (target ≤ {TARGET_S} s), heavy imports: "
          f"{', '.join(loaded) or 'none'} (target none) -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
