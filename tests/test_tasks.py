"""animate-image, remix, extend and sound, end to end on the built-in tiny models (real pipelines, real ffmpeg)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from conftest import FAST, json_lines
from PIL import Image

from sora_cli.config import Paths
from sora_cli.errors import ExitCode
from sora_cli.library import Library
from sora_cli.media.inputs import read_video
from sora_cli.media.probe import ffmpeg_exe, probe

FAST_NO_LEN = ["--size", "128x128", "--fps", "8", "--steps", "2"]


def _photo(path, size=(300, 200), mode="RGB"):
    """A photo with structure (a gradient and a bright square), so fitting and conditioning have something."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.uint8)[None, :].repeat(h, 0)
    rgb = np.stack([x, x[::-1], np.full_like(x, 90)], axis=-1)
    rgb[h // 3: h // 2, w // 3: w // 2] = 255
    img = Image.fromarray(rgb)
    if mode == "RGBA":
        img.putalpha(200)
    img.save(path)
    return path


def _video(sora, path, *extra):
    result = sora("generate", "a lighthouse at dusk", "-o", path, "--json", *FAST, *extra)
    assert result.exit_code == 0, result.stderr
    return json_lines(result.stdout)[0]


def _error_line(result) -> str:
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _manifest(path) -> dict:
    import c2pa

    from sora_cli.provenance.trust import make_context

    with c2pa.Reader("video/mp4", open(path, "rb"), context=make_context()) as reader:
        store = json.loads(reader.json())
    return store["manifests"][store["active_manifest"]]


def test_models_list_says_what_each_model_can_do(sora):
    result = sora("models", "list", "--json")
    assert result.exit_code == 0, result.stderr
    tasks = {row["name"]: set(row["tasks"]) for row in json_lines(result.stdout)}
    assert tasks["tiny"] == {"t2v", "v2v"}
    assert {"i2v", "extend"} <= tasks["tiny-i2v"]
    assert {"t2v", "v2v", "extend", "reference"} <= tasks["tiny-vace"]
    assert {"t2v", "audio"} <= tasks["tiny-av"]
    assert tasks["tiny-audio"] == {"soundtrack"}


def test_a_task_the_model_cannot_do_names_one_that_can(sora, tmp_path):
    photo = _photo(tmp_path / "p.png")
    result = sora("animate-image", photo, "a boat", "--model", "tiny", "-o", tmp_path / "x.mp4", *FAST)
    assert result.exit_code == ExitCode.USAGE
    line = _error_line(result)
    assert "tiny (WanPipeline) cannot do photo to video" in line and "--model tiny-i2v" in line
    assert not (tmp_path / "x.mp4").exists()


def test_animate_image_starts_from_the_photo_and_records_it(sora, tmp_path):
    photo = _photo(tmp_path / "harbour.png", mode="RGBA")
    out = tmp_path / "harbour.mp4"
    result = sora("animate-image", photo, "waves in the harbour", "-o", out, "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    [video] = json_lines(result.stdout)
    assert video["model"] == "tiny-i2v" and video["parameters"]["task"] == "i2v"  # the task's default model
    assert video["parameters"]["pipeline"] == "WanImageToVideoPipeline"
    info = probe(out)
    assert (info.width, info.height, info.frames) == (128, 128, 9) and not info.has_audio
    [source] = video["parameters"]["inputs"]
    assert source["role"] == "image" and source["file"] == "harbour.png" and "300x200" in source["used"]
    assert {"peak_rss_mb"} <= set(video["timings"])  # peak memory is reported
    manifest = _manifest(out)
    [ingredient] = manifest["ingredients"]
    assert ingredient["relationship"] == "inputTo" and ingredient["title"] == "harbour.png"
    actions = next(a for a in manifest["assertions"] if a["label"].startswith("c2pa.actions"))["data"]["actions"]
    assert actions[0]["action"] == "c2pa.created"  # a photo given to a model: still a new creation
    verdict = json_lines(sora("verify-provenance", out, "--json").stdout)[0]
    assert verdict["status"] == "trusted"


def test_last_image_where_the_model_has_it_and_a_clear_no_where_it_does_not(sora, tmp_path):
    first, last = _photo(tmp_path / "a.png"), _photo(tmp_path / "b.jpg", size=(200, 300))
    out = tmp_path / "ab.mp4"
    result = sora("animate-image", first, "a door opens", "--last-image", last, "-o", out, *FAST)
    assert result.exit_code == 0, result.stderr
    assert probe(out).frames == 9
    refused = sora("animate-image", first, "a door opens", "--last-image", last, "--model", "tiny-vace",
                   "-o", tmp_path / "no.mp4", *FAST)
    assert refused.exit_code == ExitCode.USAGE and "--last-image needs a first-and-last-frame" in _error_line(refused)


def test_fit_modes_meet_the_size_as_promised(tmp_path):
    from sora_cli.models import resolve_model
    from sora_cli.produce import Studio
    from sora_cli.requests import AnimateRequest

    studio = Studio()
    photo = _photo(tmp_path / "wide.png", size=(400, 100))
    for fit in ("crop", "pad", "stretch"):
        job = studio.prepare(AnimateRequest(prompt="x", image=photo, fit=fit, size="128x128", seconds=1, fps=8,
                                            output=tmp_path / f"{fit}.mp4"))
        image = np.asarray(job.plan.conditioning.image)
        assert image.shape == (128, 128, 3)
        top_row_black = bool((image[:20] < 8).all())
        assert top_row_black == (fit == "pad"), fit  # only pad letterboxes a wide photo in a square
    assert resolve_model("tiny-i2v", studio.config, studio.registry).class_name == "WanImageToVideoPipeline"


def test_remix_of_a_library_video_keeps_lineage_in_the_library_and_in_c2pa(sora, tmp_path):
    parent = _video(sora, tmp_path / "parent.mp4")
    out = tmp_path / "remix.mp4"
    result = sora("remix", "@last", "the same lighthouse in a snowstorm", "--strength", "0.6", "-o", out,
                  "--json", *FAST_NO_LEN)
    assert result.exit_code == 0, result.stderr
    [video] = json_lines(result.stdout)
    assert video["remixed_from_video_id"] == parent["id"]
    assert video["parameters"]["pipeline"] == "WanVideoToVideoPipeline" and video["parameters"]["strength"] == 0.6
    assert video["num_frames"] == 9 and probe(out).frames == 9  # as long as the clip it remakes
    library = Library(Paths.from_env().library_db)
    assert [c.id for c in library.children(parent["id"])] == [video["id"]]
    manifest = _manifest(out)
    [ingredient] = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf" and ingredient["title"] == "parent.mp4"
    generation = next(a for a in manifest["assertions"] if a["label"] == "org.sora-cli.generation")["data"]
    assert generation["parent_video_id"] == parent["id"] and generation["task"] == "v2v"
    verdict = json_lines(sora("verify-provenance", out, "--json").stdout)[0]["verdict"]
    assert verdict["tree_status"] == "trusted"
    [walked] = verdict["ingredients"]
    assert walked["relationship"] == "parentOf" and walked["status"] == "trusted"
    # a copy of the parent file anywhere on disk is still recognised as the parent, by its bytes
    copy = tmp_path / "copy.mp4"
    copy.write_bytes((tmp_path / "parent.mp4").read_bytes())
    again = json_lines(sora("remix", copy, "the lighthouse at noon", "-o", tmp_path / "r2.mp4", "--json",
                            *FAST_NO_LEN).stdout)[0]
    assert again["remixed_from_video_id"] == parent["id"]


def test_remix_of_an_outside_clip_says_what_part_is_used(sora, tmp_path):
    clip = tmp_path / "long.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=24:duration=6",
                    "-pix_fmt", "yuv420p", str(clip)], check=True)
    out = tmp_path / "r.mp4"
    result = sora("remix", clip, "as a watercolour", "-o", out, "--json", "--seconds", "1", *FAST_NO_LEN)
    assert result.exit_code == 0, result.stderr
    assert "of a 6.0 s clip" in result.stderr  # what part of a longer clip is used is said
    [video] = json_lines(result.stdout)
    assert video["remixed_from_video_id"] is None
    [source] = video["parameters"]["inputs"]
    assert source["video_id"] is None and "from 0.00 s of a 6.00 s clip" in source["used"]
    assert probe(out).frames == 9


def test_extend_continues_the_clip_and_joins_it(sora, tmp_path):
    parent = _video(sora, tmp_path / "start.mp4")  # 9 frames at 8 fps
    out = tmp_path / "longer.mp4"
    result = sora("extend", parent["id"], "the light turns on", "--seconds", "1", "-o", out, "--json",
                  "--steps", "2")
    assert result.exit_code == 0, result.stderr
    [video] = json_lines(result.stdout)
    assert video["remixed_from_video_id"] == parent["id"] and video["parameters"]["task"] == "extend"
    info = probe(out)
    assert info.frames == 9 + 8 and info.fps == 8 and (info.width, info.height) == (128, 128)
    assert abs(info.duration - 17 / 8) < 1 / 8
    original = read_video(tmp_path / "start.mp4").frames.astype(int)
    joined = read_video(out).frames.astype(int)
    head = np.abs(joined[:9] - original).mean()
    tail = np.abs(joined[9:] - original[-1]).mean()
    assert head < 6 < tail, (head, tail)  # the clip itself is kept, then new frames follow
    # no prompt: the clip's own is used
    again = sora("extend", "@last", "--seconds", "1", "-o", tmp_path / "more.mp4", "--json", "--steps", "2")
    assert again.exit_code == 0, again.stderr
    assert json_lines(again.stdout)[0]["prompt"] == "the light turns on"


def test_extend_has_a_stated_limit(sora, tmp_path):
    _video(sora, tmp_path / "s.mp4")
    result = sora("extend", "@last", "more", "--seconds", "100", "-o", tmp_path / "x.mp4")
    assert result.exit_code == ExitCode.USAGE and "at most 60 s" in _error_line(result)


def test_tiny_av_makes_sound_in_sync_and_no_audio_drops_it(sora, tmp_path):
    out = tmp_path / "av.mp4"
    result = sora("generate", "rain on a tin roof", "--model", "tiny-av", "-o", out, "--json",
                  "--size", "64x64", "--seconds", "1", "--fps", "8", "--steps", "2")
    assert result.exit_code == 0, result.stderr
    info = probe(out)
    assert info.frames == 9 and info.has_audio and info.audio_codec == "aac"
    assert abs(info.audio_duration - 9 / 8) <= 1 / 8
    silent = tmp_path / "silent.mp4"
    result = sora("generate", "rain on a tin roof", "--model", "tiny-av", "-o", silent, "--no-audio",
                  "--size", "64x64", "--seconds", "1", "--fps", "8", "--steps", "2")
    assert result.exit_code == 0, result.stderr
    assert not probe(silent).has_audio


def test_soundtrack_for_a_silent_model(sora, tmp_path):
    out = tmp_path / "st.mp4"
    result = sora("generate", "a forest", "--soundtrack", "birdsong and wind", "-o", out, "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    info = probe(out)
    assert info.has_audio and abs(info.audio_duration - 9 / 8) <= 1 / 8
    [video] = json_lines(result.stdout)
    assert video["timings"]["total"] > 0


@pytest.mark.parametrize("make, code, words", [
    (lambda p: p.write_text("not a picture"), ExitCode.UNREADABLE, "not an image"),
    (lambda p: p.write_bytes(b""), ExitCode.UNREADABLE, "empty"),
    (lambda p: p.write_bytes(_photo(p.with_suffix(".tmp.png")).read_bytes()[:200]), ExitCode.UNREADABLE,
     "truncated or corrupt"),
])
def test_bad_photos_are_one_line_and_leave_nothing(sora, tmp_path, make, code, words):
    photo = tmp_path / "in.png"
    make(photo)
    out = tmp_path / "x.mp4"
    result = sora("animate-image", photo, "a boat", "-o", out, *FAST)
    assert result.exit_code == code and words in _error_line(result)
    assert not out.exists()


def test_bad_clips_are_one_line_and_leave_nothing(sora, tmp_path):
    audio_only = tmp_path / "tone.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", str(audio_only)], check=True)
    out = tmp_path / "x.mp4"
    for ref, words in ((audio_only, "no video stream"), ("video_nothere", "neither a file nor a video"),
                       (tmp_path / "gone.mp4", "no such file")):
        result = sora("remix", ref, "x", "-o", out, *FAST_NO_LEN)
        assert result.exit_code == ExitCode.UNREADABLE and words in _error_line(result), ref
    assert not out.exists()


def test_a_batch_switches_tasks_on_one_set_of_weights(tmp_path):
    """generate, remix and extend lines on one model: one load; the sibling pipelines share its weights."""
    from sora_cli.batch import read_lines, run_batch
    from sora_cli.produce import Studio, local_engine

    engines = []

    def keep(info, device, offload, report):
        engines.append(local_engine(info, device, offload, report))
        return engines[-1]

    studio = Studio(engine_factory=keep)
    lines = tmp_path / "jobs.jsonl"
    lines.write_text("\n".join(json.dumps(x) for x in [
        {"prompt": "a kite", "size": "128x128", "seconds": 1, "fps": 8, "steps": 2, "output": "seed.mp4"},
        {"prompt": "a kite at night", "video": "out/seed.mp4", "size": "128x128", "fps": 8, "steps": 2},
        {"prompt": "a kite", "size": "128x128", "seconds": 1, "fps": 8, "steps": 2},
    ]))
    result = run_batch(studio, read_lines(lines, {}), tmp_path / "out")
    assert result.completed == 3 and not result.failed and len(engines) == 1
    siblings = engines[0]._siblings
    assert set(siblings) == {"WanPipeline", "WanVideoToVideoPipeline"}
    a, b = (next(p.transformer.parameters()) for p in siblings.values())
    assert a.data_ptr() == b.data_ptr()  # from_pipe: the same tensors, not a copy
    manifest = [json.loads(x) for x in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [m["task"] for m in manifest] == ["generate", "remix", "generate"]


def _every_task():
    from sora_cli.plugins import load_registry

    registry = load_registry()
    for name, builtin in registry.builtin_models.items():
        family = next(f for f in registry.families.values() if f.name == builtin.family)
        for task in family.tasks_for(builtin.pipeline):
            if task in ("t2v", "i2v", "v2v", "extend"):
                yield name, task


@pytest.mark.parametrize("model, task", list(_every_task()))
def test_every_built_in_model_does_every_task_it_lists(tmp_path, model, task):
    """The routes in the family table are real: each (model, task) runs its pipeline through from_pipe."""
    from sora_cli.produce import Studio
    from sora_cli.requests import AnimateRequest, ExtendRequest, GenerateRequest, RemixRequest

    studio = Studio()
    size = "64x64" if model == "tiny-av" else "128x128"  # LTX-2: multiples of 32; kept small
    fps = 8
    base = dict(model=model, size=size, fps=fps, steps=2, seed=3, output=tmp_path / "out.mp4")
    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}:duration=1.125",
                    "-pix_fmt", "yuv420p", str(clip)], check=True)
    request = {
        "t2v": lambda: GenerateRequest(prompt="a kite", seconds=1, **base),
        "i2v": lambda: AnimateRequest(prompt="a kite", image=_photo(tmp_path / "p.png"), seconds=1, **base),
        "v2v": lambda: RemixRequest(prompt="a kite", video=str(clip), seconds=1, **base),
        "extend": lambda: ExtendRequest(prompt="a kite", video=str(clip), seconds=1, **base),
    }[task]()
    try:
        job = studio.prepare(request)
        video = studio.run(job)
    finally:
        studio.close()
    info = probe(tmp_path / "out.mp4")
    assert video.parameters["task"] == task and video.parameters["pipeline"] == job.plan.pipeline_class
    assert info.frames == (9 + 8 if task == "extend" else 9), (model, task, info.frames)
    assert info.has_audio == (model == "tiny-av")


def test_a_wan_21_image_model_has_no_last_frame(sora, tmp_path):
    """Wan 2.1 I2V checkpoints (a CLIP image encoder) take a first frame only: said before anything loads."""
    from sora_cli.engines.tiny import build_tiny_wan_i2v

    folder = tmp_path / "wan21-i2v"
    build_tiny_wan_i2v(folder)
    first = _photo(tmp_path / "a.png")
    result = sora("animate-image", first, "a door", "--last-image", first, "--model", folder,
                  "-o", tmp_path / "x.mp4", *FAST)
    assert result.exit_code == ExitCode.USAGE and "takes only a first frame" in _error_line(result)
    ok = sora("animate-image", first, "a door", "--model", folder, "-o", tmp_path / "y.mp4", *FAST)
    assert ok.exit_code == 0, ok.stderr
    assert probe(tmp_path / "y.mp4").frames == 9
