from __future__ import annotations

import json
import os

# Test keys never reach a developer's real OS keyring: the encrypted 0600 file fallback is used.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sora_cli.cli.app import app

FAST = ["--size", "128x128", "--seconds", "1", "--fps", "8", "--steps", "2"]  # 9 frames


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user dirs (config, library, model cache)."""
    root = tmp_path / "home"
    monkeypatch.setenv("SORA_HOME", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


@pytest.fixture
def sora():
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
