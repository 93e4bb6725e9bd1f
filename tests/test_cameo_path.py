"""Cameos on the one path: @handle or --cameo, permission and rules first, VACE reference frames, recorded uses."""

from __future__ import annotations

import json
from pathlib import Path

import cameo_clips as clips
import pytest
from conftest import FAST, json_lines

from sora_cli.config import Paths
from sora_cli.errors import ExitCode
from sora_cli.library import Library

pytest.importorskip("skimage.data")


@pytest.fixture
def alice(sora, tmp_path: Path) -> str:
    """An enrolled cameo, through the real CLI (challenge, recorded clip, liveness check, encrypted store)."""
    challenge = json.loads(sora("cameo", "challenge", "--json").stdout)
    clip = clips.write_clip(clips.turning_clip(challenge["turns"]), tmp_path / "me.mp4")
    result = sora("cameo", "enroll", "--video", clip, "--handle", "alice", "--name", "Alice")
    assert result.exit_code == 0, result.stderr
    return "alice"


def _errors(result) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_a_cameo_in_the_prompt_conditions_a_vace_model_and_is_recorded(sora, alice, tmp_path):
    out = tmp_path / "beach.mp4"
    result = sora("generate", "@alice walking on a beach at sunset", "-o", out, "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    [video] = json_lines(result.stdout)
    assert video["model"] == "tiny-vace" and video["parameters"]["pipeline"] == "WanVACEPipeline"
    assert video["parameters"]["cameos"] == ["alice"]
    match = video["parameters"]["safety"]["cameo_match"]
    assert set(match) == {"alice"} and match["alice"]["found"] in (True, False)  # reported, not enforced
    generation = json_lines(sora("verify-provenance", out, "--json").stdout)[0]["verdict"]["generation"]
    assert generation["cameos"] == ["alice"]  # the handle, never biometric data
    assert "embedding" not in json.dumps(generation)
    uses = sora("cameo", "uses", "alice", "--json")
    assert video["id"] in uses.stdout
    assert sora("cameo", "audit").exit_code == 0


def test_cameo_refusals_are_policy_refusals_with_nothing_written(sora, alice, tmp_path):
    out = tmp_path / "x.mp4"
    for args, words in (
        (["@bob dancing"], "bob"),  # unknown handle
        (["@alice and @carol and @dave at a party"], "at most 2"),
        (["a parade", "--cameo", "alice", "--model", "tiny"], "cannot do reference"),
    ):
        result = sora("generate", *args, "-o", out, *FAST)
        assert result.exit_code in (ExitCode.POLICY, ExitCode.USAGE), result.stderr
        assert words in _errors(result)[0], (args, result.stderr)
    assert not out.exists()
    assert sora("cameo", "revoke", "alice", "--yes").exit_code == 0
    revoked = sora("generate", "@alice on a beach", "-o", out, *FAST)
    assert revoked.exit_code == ExitCode.POLICY and "revoked" in _errors(revoked)[0]
    assert not out.exists()
    assert [v.status for v in Library(Paths.from_env().library_db).list()] == []
