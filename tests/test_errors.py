"""Bad input: one clear line, a named non-zero exit code, no traceback, no file under the final name."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST

from sora_cli.builtin import TINY
from sora_cli.config import Paths
from sora_cli.errors import ExitCode
from sora_cli.library import Library
from sora_cli.models import builtin_folder


def _one_line_error(result) -> str:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--size", "100x100"], ExitCode.USAGE, "divisible by 16"),
    (["--size", "big"], ExitCode.USAGE, "WIDTHxHEIGHT"),
    (["--seconds", "0"], ExitCode.USAGE, "more than 0"),
    (["--offload", "gpu"], ExitCode.USAGE, "--offload"),
    (["--model", "no-such-model"], ExitCode.ERROR, "no model named"),
    (["--model", "someone/some-model"], ExitCode.ERROR, "cannot get someone/some-model"),
    (["--model", "/does/not/exist"], ExitCode.ERROR, "does not exist"),
])
def test_bad_options(sora, tmp_path, args, code, words):
    out = tmp_path / "x.mp4"
    result = sora("generate", "a cat", "-o", out, *args)
    assert result.exit_code == code
    assert words in _one_line_error(result)
    assert not out.exists()
    assert list(Library(Paths.from_env().library_db).list()) == []  # nothing recorded for bad input


def test_empty_prompt(sora, tmp_path):
    result = sora("generate", "  ", "-o", tmp_path / "x.mp4")
    assert result.exit_code == ExitCode.USAGE and "empty" in _one_line_error(result)
    result = sora("generate", "-o", tmp_path / "x.mp4")
    assert result.exit_code == ExitCode.USAGE and "no prompt" in _one_line_error(result)


def test_missing_or_bad_output_folder(sora, tmp_path):
    result = sora("generate", "a cat", "-o", tmp_path / "missing" / "x.mp4")
    assert result.exit_code == ExitCode.ERROR and "does not exist" in _one_line_error(result)
    a_file = tmp_path / "file"
    a_file.write_text("")
    result = sora("generate", "a cat", "-o", a_file / "x.mp4")
    assert result.exit_code == ExitCode.ERROR and "not a folder" in _one_line_error(result)
    result = sora("generate", "a cat", "-o", tmp_path / "x.gif")
    assert result.exit_code == ExitCode.USAGE and ".mp4" in _one_line_error(result)


def _tiny_copy(sora, tmp_path) -> Path:
    assert sora("models", "show", "tiny").exit_code == 0  # builds it
    copy = tmp_path / "copy"
    shutil.copytree(builtin_folder(TINY, Paths.from_env().models_cache), copy)
    return copy


def test_damaged_model_folders(sora, tmp_path):
    model = _tiny_copy(sora, tmp_path)
    out = tmp_path / "x.mp4"
    (model / "model_index.json").write_text("{ not json")
    result = sora("generate", "a cat", "-o", out, "--model", model)
    assert result.exit_code == ExitCode.ERROR and "damaged" in _one_line_error(result)

    model = _tiny_copy(sora, tmp_path / "2")
    shutil.rmtree(model / "vae")
    result = sora("generate", "a cat", "-o", out, "--model", model)
    assert "missing component folder(s) vae" in _one_line_error(result)

    model = _tiny_copy(sora, tmp_path / "3")
    weights = model / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated download
    result = sora("generate", "a cat", "-o", out, "--model", model, *FAST)
    assert result.exit_code == ExitCode.ERROR and "cannot load model" in _one_line_error(result)
    assert not out.exists()
    [video] = Library(Paths.from_env().library_db).list()
    assert video.status == "failed" and video.error["code"] == "ModelError"


def test_unsupported_pipeline_names_the_supported_families(sora, tmp_path):
    folder = tmp_path / "sd"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    result = sora("generate", "a cat", "-o", tmp_path / "x.mp4", "--model", folder)
    line = _one_line_error(result)
    assert result.exit_code == ExitCode.ERROR
    for family in ("Wan", "LTX-Video", "LTX-2", "CogVideoX", "HunyuanVideo"):
        assert family in line


def test_family_rules_are_checked_before_any_weights_load(sora, tmp_path):
    """An LTX folder with empty component folders: validation must fail before loading is tried."""
    folder = tmp_path / "ltx"
    index = {"_class_name": "LTXPipeline", "transformer": ["diffusers", "LTXVideoTransformer3DModel"],
             "vae": ["diffusers", "AutoencoderKLLTXVideo"]}
    for name in ("transformer", "vae"):
        (folder / name).mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps(index))
    result = sora("generate", "a cat", "-o", tmp_path / "x.mp4", "--model", folder, "--size", "720x480")
    assert result.exit_code == ExitCode.USAGE and "divisible by 32" in _one_line_error(result)


def test_a_model_that_cannot_do_text_to_video_says_so(sora, tmp_path):
    folder = tmp_path / "i2v"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "WanImageToVideoPipeline"}))
    result = sora("generate", "a cat", "-o", tmp_path / "x.mp4", "--model", folder)
    line = _one_line_error(result)
    assert result.exit_code == ExitCode.USAGE and "cannot do text to video" in line
    assert "it does i2v, extend; use --model tiny " in line  # names a model that can


def test_ctrl_c_during_sampling_leaves_no_file_and_marks_the_row_cancelled(tmp_path, home):
    out = tmp_path / "slow.mp4"
    sora_exe = Path(sys.executable).parent / "sora"
    env = {**os.environ, "SORA_HOME": str(home)}
    # A test run started in the background by a non-interactive shell inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: a small launcher gives sora the default, as a terminal would, and execs
    # it. (Not preexec_fn: that forces a real fork(), whose atfork handlers can hang on a BLAS call running in
    # another thread of this process.)
    launcher = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execv(sys.argv[1], sys.argv[1:])")
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, str(sora_exe), "generate", "a slow one", "-o", str(out), "--events",
         "--size", "256x256", "--seconds", "4", "--steps", "200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # wait for sampling to start
        if '"denoise"' in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)  # a loaded 2-core machine can take a while to reach the next step
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".slow")]
    [video] = Library(Paths.from_env().library_db).list()
    assert video.status == "cancelled"


def test_debug_shows_the_traceback(sora, tmp_path):
    result = sora("generate", "a cat", "-o", tmp_path / "x.mp4", "--size", "100x100", "--debug")
    assert result.exit_code == ExitCode.USAGE and "Traceback" in result.stderr
