"""The SkyReels-V2 plugin through the real CLI: entry point, family rules, the tiny model end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sora_cli.cli.app import app
from sora_cli.media.probe import probe
from typer.testing import CliRunner

PROMPT = "a lighthouse in a storm"


@pytest.fixture(scope="module")
def sora_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One SORA_HOME for the module, so tiny-skyreels is built once (the build is most of a second)."""
    home = tmp_path_factory.mktemp("sora-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SORA_HOME", str(home))
        mp.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")  # never the developer's keyring
        yield home


def sora(*args: str):
    return CliRunner().invoke(app, list(args))


def test_registered_through_the_entry_point(sora_home: Path) -> None:
    from sora_cli.plugins import load_registry

    registry = load_registry()
    assert "skyreels" in registry.plugins and not registry.warnings
    assert registry.families["skyreels_v2"].label == "SkyReels-V2"
    assert registry.family_for_class("SkyReelsV2DiffusionForcingPipeline").name == "skyreels_v2"


def test_models_list_shows_tiny_skyreels(sora_home: Path) -> None:
    result = sora("models", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    row = next(r for r in rows if r["name"] == "tiny-skyreels")
    assert row["family"] == "skyreels_v2"
    assert row["pipeline"] == "SkyReelsV2Pipeline"
    assert row["tasks"] == ["t2v"]


def generate(out: Path, *options: str):
    return sora("generate", PROMPT, "--model", "tiny-skyreels", "-o", str(out), "--seed", "3", "--json",
                *options)


def test_generate_tiny_skyreels_makes_a_real_mp4(sora_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "lighthouse.mp4"
    result = generate(out)
    assert result.exit_code == 0, result.output
    video = json.loads(result.stdout)
    assert (video["status"], video["path"]) == ("completed", str(out.resolve()))
    info = probe(out)
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert (info.width, info.height, info.fps, info.frames) == (256, 256, 16, 33)


def test_same_seed_same_frames(sora_home: Path) -> None:
    """Deterministic per seed, compared before marking (every file gets its own watermark id)."""
    import numpy as np
    from sora_cli.engines import no_report
    from sora_cli.produce import Studio
    from sora_cli.requests import GenerateRequest

    studio = Studio()
    try:
        job = studio.prepare(GenerateRequest(PROMPT, model="tiny-skyreels", seed=7, size="64x64", seconds=0.5))
        engine = studio.engine(job.model, None, "auto", no_report)
        first, second = engine.generate(job.plan).frames, engine.generate(job.plan).frames
    finally:
        studio.close()
    assert first.shape[0] == 9 and np.array_equal(first, second)


def test_size_not_divisible_by_16_is_a_usage_error(sora_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "bad.mp4"
    result = sora("generate", PROMPT, "--model", "tiny-skyreels", "--size", "250x256", "-o", str(out))
    assert result.exit_code == 2
    assert "divisible by 16" in result.stderr
    assert not out.exists()


def test_diffusion_forcing_gets_fps_and_long_video_windows() -> None:
    from sora_cli.requests import GenerateRequest

    from sora_skyreels import FAMILY

    def kwargs(class_name: str, seconds: float) -> dict:
        request = GenerateRequest(prompt=PROMPT, seconds=seconds, seed=1)
        plan = FAMILY.plan(request, model_ref="m", model_id="m", class_name=class_name)
        return FAMILY.call_kwargs(plan)

    assert "fps" not in kwargs("SkyReelsV2Pipeline", 10)  # its __call__ has no fps argument
    short = kwargs("SkyReelsV2DiffusionForcingPipeline", 4)
    assert (short["fps"], short["num_frames"], short["height"], short["width"]) == (24, 97, 544, 960)
    assert "overlap_history" not in short
    assert kwargs("SkyReelsV2DiffusionForcingPipeline", 10)["overlap_history"] == 17
