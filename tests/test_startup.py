"""`sora --help` must stay light: no torch, diffusers, httpx or c2pa at import or for help."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "diffusers", "httpx", "c2pa", "transformers", "numpy")

PROBE = """
import sys
from sora_cli.cli.app import app
sys.argv = ["sora", *{args!r}]
try:
    app()
except SystemExit:
    pass
print("HEAVY=" + ",".join(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def _heavy_after(*args: str) -> str:
    result = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args), heavy=HEAVY)],
                            capture_output=True, text=True, timeout=60)
    line = [x for x in result.stderr.splitlines() if x.startswith("HEAVY=")]
    assert line, result.stderr
    return line[-1].removeprefix("HEAVY=")


def test_importing_the_app_pulls_in_nothing_heavy():
    result = subprocess.run(
        [sys.executable, "-c", f"import sys, sora_cli.cli.app; print([m for m in {HEAVY!r} if m in sys.modules])"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_help_of_every_command_is_light():
    for args in (["--help"], ["generate", "--help"], ["batch", "--help"], ["models", "--help"],
                 ["library", "--help"], ["config", "--help"], ["animate-image", "--help"], ["remix", "--help"],
                 ["extend", "--help"], ["policy", "--help"], ["cameo", "--help"]):
        assert _heavy_after(*args) == "", args


def test_version(sora):
    result = sora("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("sora-cli ")
