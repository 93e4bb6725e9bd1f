"""Safety on the one path: refused prompts, faces in inputs and in made frames stop a job with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FAST, json_lines
from PIL import Image

from sora_cli.config import Paths
from sora_cli.engines import Clip, Engine
from sora_cli.errors import ExitCode, PolicyRefusal
from sora_cli.guard import Guard
from sora_cli.library import Library
from sora_cli.produce import Studio
from sora_cli.requests import AnimateRequest, GenerateRequest
from sora_cli.safety import SafetyLog

skdata = pytest.importorskip("skimage.data")

MODEL_ONLY = "a girl with scars on her arms holding a blade"  # no hard rule names it; MiniLM does


def _errors(result) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _events() -> list[dict]:
    return SafetyLog(Paths.from_env().data_dir / "safety.db").events()


def test_a_prompt_refused_by_the_rules_loads_nothing_and_writes_nothing(sora, tmp_path):
    out = tmp_path / "x.mp4"
    result = sora("generate", "a man stabbing a woman to death, blood everywhere", "-o", out, *FAST)
    assert result.exit_code == ExitCode.POLICY
    [line] = _errors(result)
    assert "graphic violence" in line and "stabbing" in line  # the category and the words that triggered it
    assert not out.exists() and list(tmp_path.glob("*.mp4")) == []
    assert list(Library(Paths.from_env().library_db).list()) == []  # refused before a job existed
    [event] = _events()
    assert event["category"] == "violence" and event["source"] == "cli" and event["verdict"] == "refuse"
    assert not (Paths.from_env().models_cache).exists()  # no model was even built


def test_a_prompt_only_the_model_refuses_stops_before_sampling(sora, tmp_path):
    from sora_cli.safety import Moderator

    assert Moderator.from_paths().check(MODEL_ONLY, model=False).allowed  # else pick another prompt
    out = tmp_path / "x.mp4"
    result = sora("generate", MODEL_ONLY, "-o", out, *FAST)
    assert result.exit_code == ExitCode.POLICY and "self-harm" in _errors(result)[0].lower().replace("_", "-")
    assert not out.exists()
    [row] = Library(Paths.from_env().library_db).list()
    assert row.status == "failed" and row.error["code"] == "PolicyRefusal"
    assert _events()[0]["layer"] == "model"


def test_policy_check_for_scripts(sora):
    ok = sora("policy", "check", "a chef cutting onions with a sharp knife", "--json")
    assert ok.exit_code == 0 and json_lines(ok.stdout)[0]["allowed"] is True
    no = sora("policy", "check", "a man stabbing a woman to death, blood everywhere", "--json")
    assert no.exit_code == ExitCode.POLICY and json_lines(no.stdout)[0]["category"] == "violence"
    shown = sora("policy", "show", "--json")
    assert shown.exit_code == 0 and "violence" in shown.stdout


def test_batch_refuses_a_line_and_makes_the_others(sora, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps({"prompt": p}) for p in
                              ("a paper boat", "a man stabbing a woman to death, blood everywhere")))
    result = sora("batch", jobs, "--out-dir", tmp_path / "out", *FAST)
    assert result.exit_code == ExitCode.ERROR
    assert "jobs.jsonl:2: refused by policy" in result.stderr
    assert len(list((tmp_path / "out").glob("*.mp4"))) == 1
    assert _events()[0]["source"] == "batch"


def test_a_real_face_in_a_photo_needs_consent_which_the_manifest_records(sora, tmp_path):
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(photo)
    out = tmp_path / "a.mp4"
    refused = sora("animate-image", photo, "she waves", "-o", out, *FAST)
    assert refused.exit_code == ExitCode.POLICY and "--attest-consent" in _errors(refused)[0]
    assert not out.exists()
    ok = sora("animate-image", photo, "she waves", "-o", out, "--attest-consent", "--json", *FAST)
    assert ok.exit_code == 0, ok.stderr
    faces = json_lines(ok.stdout)[0]["parameters"]["safety"]["input_faces"]
    assert faces == {"faces": 1, "cameos": [], "attested_consent": True}
    verdict = json_lines(sora("verify-provenance", out, "--json").stdout)[0]["verdict"]
    assert verdict["generation"]["input_faces"]["attested_consent"] is True


class _FaceEngine(Engine):
    """Makes frames that show a given face (the tiny models only make noise)."""

    def __init__(self, face: np.ndarray):
        self.face = face

    def generate(self, plan, report=None) -> Clip:
        frame = np.asarray(Image.fromarray(self.face).resize((plan.width, plan.height)))
        return Clip(frames=np.stack([frame] * plan.num_frames), fps=plan.fps)


class _CameoGuard(Guard):
    """An enrolled cameo this requester may not use (cameos themselves come in a later issue)."""

    def __init__(self, paths, descriptor):
        super().__init__(paths)
        self.descriptor = descriptor

    def gallery(self):
        return [("@eileen", self.descriptor)]


def test_a_made_video_showing_a_cameo_the_requester_may_not_use_is_blocked(tmp_path):
    from sora_cli.safety import detect_faces

    astronaut = skdata.astronaut()
    [face] = detect_faces(astronaut)
    studio = Studio(engine_factory=lambda info, device, offload, report: _FaceEngine(astronaut))
    studio.guard = _CameoGuard(studio.config.paths, face.embedding)
    out = tmp_path / "x.mp4"
    job = studio.prepare(GenerateRequest(prompt="an astronaut smiling", size="512x512", seconds=1, fps=4,
                                         steps=2, output=out))
    with pytest.raises(PolicyRefusal, match="@eileen"):
        studio.run(job)
    assert not out.exists()
    assert not [p.name for p in tmp_path.iterdir() if "x.mp4" in p.name]  # the scratch file went too (it is encoded
    # while the frames are checked)
    [row] = studio.library.list()
    assert row.status == "failed" and row.error["code"] == "PolicyRefusal"
    assert _events()[0]["category"] == "cameo_consent"
    with pytest.raises(PolicyRefusal, match="@eileen"):  # and as an input, consent cannot be attested for it
        photo = tmp_path / "p.png"
        Image.fromarray(astronaut).save(photo)
        studio.prepare(AnimateRequest(prompt="x", image=photo, attest_consent=True, output=tmp_path / "y.mp4"))
