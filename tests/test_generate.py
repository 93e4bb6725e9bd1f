"""`sora generate` end to end: the real tiny pipeline, real ffmpeg, a real SQLite library."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from conftest import FAST, json_lines
from PIL import Image

from sora_cli.config import Paths
from sora_cli.engines import no_report
from sora_cli.library import Library
from sora_cli.media.probe import probe
from sora_cli.produce import Studio
from sora_cli.requests import GenerateRequest


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generate_writes_a_playable_mp4_and_records_it(sora, tmp_path):
    out = tmp_path / "fox.mp4"
    result = sora("generate", "a red fox running through fresh snow", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out.resolve())  # stdout is data only
    assert "seed" in result.stderr and "33 frames" in result.stderr  # the rounding is said
    info = probe(out)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 256, 256)
    assert info.fps == 16 and info.frames == 33
    assert abs(info.duration - 33 / 16) < 1 / 16
    [video] = Library(Paths.from_env().library_db).list()
    assert video.status == "completed" and video.path == str(out.resolve())
    assert video.sha256 == _sha(out) and video.num_frames == 33
    assert video.parameters["steps"] == 4 and video.model_hash.startswith("sha256:")
    with Image.open(video.thumbnail_path) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (256, 256)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_json_is_one_openai_shaped_video_object(sora, tmp_path):
    out = tmp_path / "a.mp4"
    result = sora("generate", "waves on a beach", "-o", out, "--seed", "7", "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    [video] = json_lines(result.stdout)
    for key in ("id", "object", "status", "progress", "model", "seconds", "size", "prompt",
                "remixed_from_video_id", "error", "created_at", "completed_at"):
        assert key in video
    assert video["object"] == "video" and video["status"] == "completed" and video["progress"] == 100
    assert video["seed"] == 7 and video["size"] == "128x128" and isinstance(video["seconds"], str)
    assert video["num_frames"] == 9 and video["sha256"] == _sha(out)
    assert set(video["timings"]) >= {"load", "generate", "encode", "total"}


def test_same_seed_same_frames_different_seed_different_frames():
    """The pipeline is deterministic per seed (before marking: every file gets its own watermark id)."""
    studio = Studio()
    try:
        job = studio.prepare(GenerateRequest("a kite", seed=42, size="64x64", seconds=1, fps=8, steps=2))
        engine = studio.engine(job.model, None, "auto", no_report)
        first, second = engine.generate(job.plan).frames, engine.generate(job.plan).frames
        other = engine.generate(replace(job.plan, seed=43)).frames
    finally:
        studio.close()
    assert np.array_equal(first, second) and not np.array_equal(first, other)


def test_a_random_seed_is_printed_and_recorded(sora, tmp_path):
    result = sora("generate", "a kite", "-o", tmp_path / "c.mp4", "--json", *FAST)
    seed = json.loads(result.stdout)["seed"]
    assert isinstance(seed, int) and f"seed {seed}" in result.stderr
    [video] = Library(Paths.from_env().library_db).list()
    assert video.seed == seed and video.parameters["seed"] == seed


def test_prompt_from_stdin_and_from_a_file(sora, tmp_path):
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("a paper boat on a river\n")
    r1 = sora("generate", "-", "-o", tmp_path / "s.mp4", "--json", *FAST, input="a paper boat on a river\n")
    r2 = sora("generate", "--prompt-file", prompt_file, "-o", tmp_path / "f.mp4", "--json", *FAST)
    assert r1.exit_code == 0 and r2.exit_code == 0
    assert json.loads(r1.stdout)["prompt"] == json.loads(r2.stdout)["prompt"] == "a paper boat on a river"


def test_options_reach_the_pipeline(sora, tmp_path):
    out = tmp_path / "o.mp4"
    result = sora("generate", "city lights", "-o", out, "--size", "192x96", "--seconds", "1.5", "--fps", "12",
                  "--steps", "3", "--guidance", "1.0", "--negative-prompt", "blur", "--json")
    assert result.exit_code == 0, result.stderr
    video = json.loads(result.stdout)
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (192, 96, 12, 17)  # 18 asked -> 4k+1
    assert video["parameters"]["steps"] == 3 and video["parameters"]["guidance"] == 1.0
    assert video["negative_prompt"] == "blur"


def test_default_output_name_goes_to_the_configured_folder(sora, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    assert sora("config", "set", "output_dir", folder).exit_code == 0
    result = sora("generate", "Snow, at night!", "--seed", "5", *FAST)
    assert result.exit_code == 0, result.stderr
    assert Path(result.stdout.strip()) == (folder / "snow-at-night-5.mp4").resolve()
