"""What the bench scripts share: a temp SORA_HOME, the built tiny model, timing a command."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SORA = Path(sys.executable).parent / "sora"


def bench_env(root: Path) -> dict[str, str]:
    """A temp SORA_HOME; bytecode is cached under `root` (as an installed sora has it), never in the repo."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "SORA_HOME": str(root / "home"), "PYTHONPYCACHEPREFIX": str(root / "pycache"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def build_tiny(env: dict[str, str], name: str = "tiny") -> Path:
    """Build a built-in tiny model outside any timing; returns its folder."""
    code = (
        "from sora_cli.plugins import load_registry; from sora_cli.config import Paths; "
        "from sora_cli.models import ensure_builtin; "
        f"print(ensure_builtin(load_registry().builtin_models[{name!r}], Paths.from_env().models_cache))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU user+sys) seconds of one run of `cmd`; exits with its stderr if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
