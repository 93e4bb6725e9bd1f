"""Every video leaves marked and signed; verify-provenance reads any clip back (real c2pa, real ffmpeg)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import json_lines

from sora_cli.config import Paths
from sora_cli.errors import ExitCode
from sora_cli.library import Library
from sora_cli.media.probe import ffmpeg_exe

SIGNED = ["--size", "192x192", "--seconds", "1", "--fps", "16", "--steps", "2"]  # 17 frames


def _generate(sora, path: Path, *extra: str) -> dict:
    result = sora("generate", "a lighthouse at dusk", "-o", path, "--json", *SIGNED, *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _verify(sora, *args) -> tuple[int, list[dict]]:
    result = sora("verify-provenance", "--json", *args)
    return result.exit_code, json_lines(result.stdout)


def test_a_generated_clip_is_signed_marked_and_verifies(sora, tmp_path):
    out = tmp_path / "clip.mp4"
    video = _generate(sora, out)
    assert video["watermark_id"] and video["manifest_label"].startswith("urn:c2pa:")
    code, [check] = _verify(sora, out)
    assert code == ExitCode.OK and check["status"] == "trusted"  # your own local CA is an anchor
    verdict = check["verdict"]
    assert verdict["creation_action"]["action"] == "c2pa.created"
    assert verdict["creation_action"]["digitalSourceType"].endswith("trainedAlgorithmicMedia")
    generation = verdict["generation"]
    assert generation["seed"] == video["seed"] and generation["visible_mark"] is True
    assert "prompt" not in generation and len(generation["prompt_sha256"]) == 64
    assert verdict["soft_binding"]["watermark_id"] == int(video["watermark_id"], 16)
    assert Library(Paths.from_env().library_db).by_watermark(int(video["watermark_id"], 16)).id == video["id"]


def test_prompt_and_visible_mark_choices_are_recorded(sora, tmp_path):
    out = tmp_path / "clip.mp4"
    _generate(sora, out, "--no-visible-mark", "--c2pa-include-prompt")
    _, [check] = _verify(sora, out)
    generation = check["verdict"]["generation"]
    assert generation["visible_mark"] is False and generation["prompt"] == "a lighthouse at dusk"


def test_a_reencoded_clip_is_found_by_its_watermark(sora, tmp_path):
    out = tmp_path / "clip.mp4"
    video = _generate(sora, out)
    shared = tmp_path / "shared.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-i", str(out), "-c:v", "libx264", "-crf", "28",
                    str(shared)], check=True)
    code, [check] = _verify(sora, shared)
    assert code == ExitCode.NO_PROVENANCE and check["status"] == "watermark_only"
    assert check["watermark"]["id"] == video["watermark_id"]
    assert check["original"]["id"] == video["id"] and check["original"]["status"] == "trusted"
    text = sora("verify-provenance", shared).stdout
    assert "content modified since it was signed" in text and video["id"] in text


def test_altered_unsigned_unreadable_and_the_worst_exit_code(sora, tmp_path):
    out = tmp_path / "clip.mp4"
    _generate(sora, out)
    data = bytearray(out.read_bytes())
    mdat = data.find(b"mdat")
    data[mdat + 200] ^= 0xFF
    altered = tmp_path / "altered.mp4"
    altered.write_bytes(bytes(data))
    plain = tmp_path / "plain.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=128x128:rate=8",
                    "-t", "1", "-pix_fmt", "yuv420p", str(plain)], check=True)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert _verify(sora, altered)[0] == ExitCode.PROVENANCE_INVALID
    code, [check] = _verify(sora, plain)
    assert code == ExitCode.NO_PROVENANCE and check["status"] == "no_manifest"
    assert check["watermark"]["present"] is False  # never a guess on an unmarked clip
    assert _verify(sora, empty)[0] == ExitCode.UNREADABLE
    code, checks = _verify(sora, tmp_path)
    assert code == ExitCode.PROVENANCE_INVALID
    assert {Path(c["path"]).name: c["status"] for c in checks} == {
        "altered.mp4": "altered", "clip.mp4": "trusted", "empty.mp4": "unreadable", "plain.mp4": "no_manifest"}
    result = sora("verify-provenance", altered)
    assert "ALTERED" in result.stdout and "Traceback" not in result.stderr


def test_another_signer_is_intact_but_untrusted(sora, tmp_path, monkeypatch, home):
    out = tmp_path / "theirs.mp4"
    monkeypatch.setenv("SORA_HOME", str(tmp_path / "someone-else"))
    _generate(sora, out)
    their_ca = tmp_path / "their-ca.pem"
    assert sora("keys", "export-ca", "-o", their_ca).exit_code == 0
    monkeypatch.setenv("SORA_HOME", str(home))
    code, [check] = _verify(sora, out)
    assert code == ExitCode.OK and check["status"] == "intact_untrusted"
    assert _verify(sora, "--require-trusted", out)[0] == ExitCode.UNTRUSTED
    code, [check] = _verify(sora, "--trust-anchors", their_ca, "--require-trusted", out)
    assert code == ExitCode.OK and check["status"] == "trusted"


def test_keys_show_and_the_private_keys_stay_encrypted_and_private(sora, tmp_path):
    before = json.loads(sora("keys", "show", "--json").stdout)
    assert before["exists"] is False
    _generate(sora, tmp_path / "clip.mp4", "--no-visible-mark")
    info = json.loads(sora("keys", "show", "--json").stdout)
    assert info["exists"] and info["algorithm"].lower() == "es256" and info["ca"]
    # no OS keyring here (conftest forces keyring's fail backend): the encrypted 0600 file fallback
    key_files = sorted(Paths.from_env().data_dir.rglob("*.p8"))
    assert {p.name for p in key_files} == {"ca-key.p8", "signing-key.p8"}
    for path in key_files:
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert b"BEGIN ENCRYPTED PRIVATE KEY" in path.read_bytes()
    pem = sora("keys", "export-ca").stdout
    assert pem.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in pem


def test_folders_recursive_jobs_and_an_anchor_bundle(sora, tmp_path, monkeypatch, home):
    nested = tmp_path / "clips" / "day1"
    nested.mkdir(parents=True)
    mine = tmp_path / "clips" / "mine.mp4"
    _generate(sora, mine, "--no-visible-mark")
    monkeypatch.setenv("SORA_HOME", str(tmp_path / "someone-else"))
    theirs = nested / "theirs.mp4"
    _generate(sora, theirs, "--no-visible-mark")
    their_ca = sora("keys", "export-ca").stdout
    monkeypatch.setenv("SORA_HOME", str(home))
    top_only = _verify(sora, tmp_path / "clips")[1]
    assert [Path(c["path"]).name for c in top_only] == ["mine.mp4"]
    serial = _verify(sora, "-r", tmp_path / "clips")[1]
    parallel = _verify(sora, "-r", "--jobs", "2", tmp_path / "clips")[1]
    assert [c["path"] for c in serial] == [c["path"] for c in parallel] == [str(theirs), str(mine)]
    assert [c["status"] for c in parallel] == ["intact_untrusted", "trusted"]
    # a bundle of several roots (as the C2PA trust list is): an unrelated CA first, then theirs
    from sora_cli.provenance.keys import make_ca

    unrelated, _ = make_ca("unrelated root")
    from cryptography.hazmat.primitives.serialization import Encoding

    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(unrelated.public_bytes(Encoding.PEM) + their_ca.encode() + b"\n")
    code, checks = _verify(sora, "-r", "--require-trusted", "--trust-anchors", bundle, tmp_path / "clips")
    assert code == ExitCode.OK and {c["status"] for c in checks} == {"trusted"}
    empty = tmp_path / "empty"
    empty.mkdir()
    result = sora("verify-provenance", empty)
    assert result.exit_code == ExitCode.USAGE and "no video files" in result.stderr
