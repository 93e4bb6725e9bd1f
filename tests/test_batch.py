"""`sora batch`: one warm model, a manifest, resume, dry run, bad lines reported by number."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import json_lines

from sora_cli.batch import read_lines, run_batch
from sora_cli.errors import ExitCode
from sora_cli.produce import Studio, local_engine

OPTS = ["--size", "128x128", "--seconds", "1", "--fps", "8", "--steps", "2"]


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_batch_with_bad_lines_and_a_manifest(sora, tmp_path):
    prompts = _write_jsonl(tmp_path / "prompts.jsonl", [
        {"prompt": "a red kite"},
        {"prompt": "a blue kite", "seed": 3, "size": "96x64"},
        {"prompt": "bad size", "size": "100x100"},
        "{not json",
        {"prompt": "a green kite", "steps": 1, "output": "green.mp4"},
        {"promt": "typo"},
    ])
    out = tmp_path / "out"
    result = sora("batch", prompts, "--out-dir", out, "--json", *OPTS)
    assert result.exit_code == ExitCode.ERROR
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert [e.split(":")[2] for e in errors] == ["3", "4", "6"]  # file:line: reason
    assert "divisible by 16" in errors[0] and "JSON" in errors[1] and "unknown field(s) promt" in errors[2]
    videos = json_lines(result.stdout)
    assert len(videos) == 3 and all(v["status"] == "completed" for v in videos)
    assert (out / "green.mp4").exists() and (out / "0001-a-red-kite.mp4").exists()
    manifest = json_lines((out / "manifest.jsonl").read_text())
    done = [m for m in manifest if m["status"] == "completed"]
    assert len(done) == 3
    entry = next(m for m in done if m["line"] == 2)
    assert entry["seed"] == 3 and entry["parameters"]["size"] == "96x64"
    for key in ("id", "key", "request", "model", "model_id", "model_hash", "versions", "output", "sha256",
                "timings"):
        assert entry[key], key
    assert {"torch", "diffusers"} <= set(entry["versions"])


def test_resume_skips_what_is_done_and_redoes_what_is_missing(sora, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("# a comment\none\n\ntwo\nthree\n")
    out = tmp_path / "out"
    assert sora("batch", prompts, "--out-dir", out, *OPTS).exit_code == 0
    files = sorted(out.glob("*.mp4"))
    assert [f.name[:4] for f in files] == ["0002", "0004", "0005"]
    stamps = {f: f.stat().st_mtime_ns for f in files}
    files[1].unlink()
    result = sora("batch", prompts, "--out-dir", out, "--resume", "--json", *OPTS)
    assert result.exit_code == 0, result.stderr
    assert [v["prompt"] for v in json_lines(result.stdout)] == ["two"]
    assert files[0].stat().st_mtime_ns == stamps[files[0]] and files[1].exists()
    assert "1 made, 2 already done" in result.stderr


def test_csv_batch_and_dry_run(sora, tmp_path):
    prompts = tmp_path / "p.csv"
    prompts.write_text("prompt,seed,size\nfirst,1,64x64\nsecond,,100x100\n")
    out = tmp_path / "out"
    result = sora("batch", prompts, "--out-dir", out, "--dry-run", *OPTS)
    assert result.exit_code == ExitCode.USAGE
    assert "line 2: ok" in result.stdout and "line 3:" in result.stderr
    assert not list(out.glob("*.mp4")) if out.exists() else True
    result = sora("batch", prompts, "--out-dir", out, "--json", *OPTS)
    assert result.exit_code == ExitCode.ERROR
    [video] = json_lines(result.stdout)
    assert video["seed"] == 1 and video["size"] == "64x64"


def test_the_model_loads_once_for_the_whole_batch(tmp_path):
    loads = []

    def counting_engine(info, device, offload, report):
        loads.append(info.ref)
        return local_engine(info, device, offload, report)

    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\nthree\n")
    lines = read_lines(prompts, {"size": "64x64", "seconds": 1, "fps": 8, "steps": 1})
    studio = Studio(engine_factory=counting_engine)
    result = run_batch(studio, lines, tmp_path / "out")
    studio.close()
    assert result.completed == 3 and loads == ["tiny"]
