"""`sora cameo …` through the real CLI: a recorded challenge (an MP4 made from skimage photos) to revocation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("dlib")
pytest.importorskip("skimage.data")

import cameo_clips as clips  # noqa: E402
import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from sora_cli.cli import cameo  # noqa: E402

PASS = "correct horse battery staple"


@pytest.fixture
def sora_cameo():
    root = typer.Typer()
    root.add_typer(cameo.app, name="cameo")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(root, ["cameo", *map(str, args)], input=input, catch_exceptions=False)

    return invoke


def test_enrol_share_export_and_revoke(sora_cameo, tmp_path: Path, home: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    issued = sora_cameo("challenge", "--json")
    assert issued.exit_code == 0
    challenge = json.loads(issued.stdout)
    assert len(challenge["turns"]) == 4 and challenge["phrase"] in challenge["instructions"]
    clip = clips.write_clip(clips.turning_clip(challenge["turns"]), tmp_path / "me.mp4")
    voice = tmp_path / "me.wav"
    voice.write_bytes(b"RIFF voice")
    result = sora_cameo("enroll", "--video", clip, "--handle", "@Eileen", "--name", "Eileen Collins",
                        "--audio", voice)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "@eileen" and "liveness passed" in result.stderr
    assert "not checked" in result.stderr  # the spoken phrase: said honestly

    shown = json.loads(sora_cameo("show", "eileen", "--json").stdout)
    assert shown["name"] == "Eileen Collins" and shown["challenge"]["phrase"] == challenge["phrase"]
    assert shown["owner_here"] and shown["voice"] and "embedding" not in json.dumps(shown)
    granted = sora_cameo("grant", "eileen", "bob", "--audience", "approved", "--json")
    assert json.loads(granted.stdout) == {"handle": "eileen", "audience": "approved", "approved": ["bob"]}
    rules = sora_cameo("rules", "eileen", "--add", "no political content", "--add", "only at night")
    assert rules.exit_code == 0
    assert rules.stdout.splitlines() == ["'no political content' (checked: topic politics)",
                                         "'only at night' (advisory: only rules that forbid something are checked)"]
    listed = sora_cameo("list").stdout
    assert listed.startswith("@eileen") and "active" in listed
    assert sora_cameo("uses", "eileen").stdout == ""
    assert json.loads(sora_cameo("audit", "--json").stdout)["ok"]

    secret = tmp_path / "passphrase"
    secret.write_text(PASS + "\n")
    exported = sora_cameo("export", "eileen", "-o", tmp_path / "eileen.cameo", "--passphrase-file", secret)
    assert exported.exit_code == 0 and Path(exported.stdout.strip()).exists()
    monkeypatch.setenv("SORA_HOME", str(tmp_path / "laptop"))
    monkeypatch.setenv(cameo.PASSPHRASE_ENV, "the wrong passphrase")
    refused = sora_cameo("import", tmp_path / "eileen.cameo")
    assert refused.exit_code == 5 and "wrong passphrase" in refused.stderr
    monkeypatch.setenv(cameo.PASSPHRASE_ENV, PASS)
    assert sora_cameo("import", tmp_path / "eileen.cameo").stdout.strip() == "@eileen"
    monkeypatch.setenv("SORA_HOME", str(home))

    assert sora_cameo("revoke", "eileen").exit_code == 2  # not a terminal: needs --yes
    revoked = sora_cameo("revoke", "eileen", "--purge", "--yes", "--json")
    assert revoked.exit_code == 0 and "data key destroyed" in revoked.stderr
    assert json.loads(revoked.stdout)["handle"] == "eileen"
    gone = sora_cameo("show", "eileen")
    assert gone.exit_code == 5 and "revoked" in gone.stderr
    assert "revoked" in sora_cameo("list").stdout
    assert sora_cameo("audit").exit_code == 0


def test_refusals_are_one_line_with_their_exit_code(sora_cameo, tmp_path: Path, home: Path) -> None:
    clip = clips.write_clip(clips.still_clip(8), tmp_path / "still.mp4")
    no_challenge = sora_cameo("enroll", "--video", clip, "--handle", "eileen", "--name", "E")
    assert no_challenge.exit_code == 2 and "sora cameo challenge" in no_challenge.stderr
    sora_cameo("challenge")
    unreadable = sora_cameo("enroll", "--video", tmp_path / "missing.mp4", "--handle", "eileen", "--name", "E")
    assert unreadable.exit_code == 9 and "does not exist" in unreadable.stderr
    still = sora_cameo("enroll", "--video", clip, "--handle", "eileen", "--name", "E")
    assert still.exit_code == 5 and "no head turn" in still.stderr and len(still.stderr.splitlines()) == 1
    bad_handle = sora_cameo("enroll", "--video", clip, "--handle", "Not A Handle", "--name", "E")
    assert bad_handle.exit_code == 2 and "not a cameo handle" in bad_handle.stderr
    unknown = sora_cameo("show", "zed")
    assert unknown.exit_code == 2 and "no cameo @zed" in unknown.stderr
    assert sora_cameo("grant", "zed", "bob").exit_code == 2

    log = home / "data" / "cameos" / "audit.jsonl"
    assert not log.exists()  # refused enrolments leave nothing behind
    assert sora_cameo("audit").exit_code == 0
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(json.dumps({"seq": 0, "event": "use", "handle": "x", "prev": "0" * 64, "hash": "f" * 64}) + "\n")
    altered = sora_cameo("audit")
    assert altered.exit_code == 6 and "ALTERED" in altered.stdout
