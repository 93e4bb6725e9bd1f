"""CameoBook end to end on real enrolments: encryption at rest, consent, access, rules, audit, revoke, bundles.

Two people are enrolled once per session through the real liveness check (the astronaut as @alice, with a voice
sample; an LFW face as @bob) into a template home that each test copies into its own SORA_HOME. Keys go through
the real keystore: the 0600 file fallback (conftest selects keyring's `fail` backend), and a real in-memory
`keyring` backend subclass where a test needs the OS-keyring path.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("dlib")
pytest.importorskip("skimage.data")

import cameo_clips as clips  # noqa: E402
from keyring.backend import KeyringBackend  # noqa: E402
from keyring.errors import PasswordDeleteError  # noqa: E402

from sora_cli.cameo import CameoBook, CameoRefused, CameoRevoked, ConsentInvalid, UnknownCameo  # noqa: E402
from sora_cli.cameo.bundle import BundleInvalid  # noqa: E402
from sora_cli.cameo.store import CameoDataError  # noqa: E402
from sora_cli.config import Paths  # noqa: E402
from sora_cli.errors import ExitCode, UsageError  # noqa: E402
from sora_cli.provenance.keystore import KeyStoreError  # noqa: E402

PASS = "correct horse battery staple"
SHA = hashlib.sha256(b"a prompt").hexdigest()


def paths_of(root: Path) -> Paths:
    return Paths(root / "config", root / "data", root / "cache")


def enrol(book: CameoBook, handle: str, img=None, **kwargs):
    challenge = book.new_challenge()
    extra = {} if img is None else {"img": img, "cx": kwargs.pop("cx"), "radius": kwargs.pop("radius")}
    return book.enroll(frames=clips.turning_clip(challenge.turns, **extra), fps=8.0, handle=handle, **kwargs)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cameo-template")
    book = CameoBook(paths_of(root))
    voice = tmp_path_factory.mktemp("voice") / "voice.wav"  # outside the home: only its encrypted copy is in it
    voice.write_bytes(b"RIFF fake wav bytes for the voice sample")
    enrol(book, "alice", name="Alice", audio=voice)
    # LFW face 3: nose at x=138, face box 223 px wide (its own cylinder for the simulated turns)
    enrol(book, "bob", img=clips.stranger(3), cx=138.0, radius=0.75 * 223, name="Bob")
    return root


@pytest.fixture
def book(template: Path, home: Path) -> CameoBook:
    shutil.copytree(template, home, dirs_exist_ok=True)
    return CameoBook(paths_of(home))


class MemoryKeyring(KeyringBackend):
    """A real keyring backend, kept in memory: the OS-keyring code path without touching the developer's."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, refuse_delete: bool = False) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.refuse_delete = refuse_delete

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.refuse_delete or (service, username) not in self.entries:
            raise PasswordDeleteError(username)
        del self.entries[(service, username)]


def all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


def raw_data_key(book: CameoBook, handle: str) -> bytes:
    from cryptography.hazmat.primitives import serialization

    meta = json.loads((book.root / handle / "meta.json").read_text())
    key = book.vault.load(meta["data_key"]["name"], meta["data_key"]["store"])
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def test_enrolled_data_is_encrypted_at_rest(book: CameoBook, home: Path) -> None:
    folder = book.root / "alice"
    assert sorted(p.name for p in folder.iterdir()) == ["consent.json", "embedding.enc", "frames.enc", "meta.json",
                                                        "voice.enc"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())
    embedding = dict(book.gallery())["@alice"]
    assert embedding.shape == (128,) and set(dict(book.gallery())) == {"@alice", "@bob"}
    everything = all_bytes(home)
    assert embedding.astype("<f4").tobytes() not in everything  # the descriptor only ever exists encrypted
    assert b"\x89PNG" not in everything and b"fake wav" not in everything
    key = raw_data_key(book, "alice")
    assert key not in everything and key.hex().encode() not in everything
    record = json.loads((folder / "consent.json").read_text())
    assert record["handle"] == "alice" and record["liveness"]["passed"] and "embedding" not in json.dumps(record)
    frames = book.reference_frames("@Alice")
    assert len(frames) == 3 and all(f.mode == "RGB" and f.size[0] >= 150 for f in frames)
    assert book.voice("alice") == (b"RIFF fake wav bytes for the voice sample", ".wav") and book.voice("bob") is None


def test_a_made_video_is_checked_for_the_cameos_it_should_show(book: CameoBook) -> None:
    import numpy as np

    video = np.stack([clips.head(), clips.turned(clips.head(), 20), clips.no_face_clip(1)[0]])
    found = book.match_output(video, ["alice", "bob"], sample=3)
    assert found["alice"]["found"] and found["alice"]["frames"] == 2 and found["alice"]["distance"] < 0.3
    assert found["bob"] == {"found": False, "distance": found["bob"]["distance"], "frames": 0}
    assert found["bob"]["distance"] > 0.6
    noise = np.random.default_rng(0).integers(0, 255, (2, 128, 128, 3), dtype=np.uint8)
    assert book.match_output(noise, ["alice"]) == {"alice": {"found": False, "distance": None, "frames": 0}}


def test_files_are_bound_to_their_cameo(book: CameoBook) -> None:
    alice, bob = book.root / "alice", book.root / "bob"
    shutil.copy(alice / "frames.enc", bob / "frames.enc")  # swapped between cameos
    with pytest.raises(CameoDataError, match="altered, or not this cameo's"):
        book.reference_frames("bob")
    blob = bytearray((alice / "embedding.enc").read_bytes())
    blob[-1] ^= 1
    (alice / "embedding.enc").write_bytes(bytes(blob))
    assert [h for h, _ in book.gallery()] == ["@bob"]


def test_revoke_destroys_the_key_and_the_data_for_good(book: CameoBook, home: Path, tmp_path: Path) -> None:
    key = raw_data_key(book, "alice")
    meta = json.loads((book.root / "alice" / "meta.json").read_text())
    stolen = (book.root / "alice" / "embedding.enc").read_bytes()  # a copy taken before revocation
    book.export("alice", tmp_path / "old.cameo", PASS)
    result = book.revoke("alice")
    assert result["files_removed"] and not (book.root / "alice").exists()
    with pytest.raises(KeyStoreError):
        book.vault.load(meta["data_key"]["name"], meta["data_key"]["store"])
    assert not (book.root / "keys" / f"{meta['data_key']['name']}.p8").exists()
    assert key not in all_bytes(home) and stolen[4:] not in all_bytes(home)
    from cryptography.hazmat.primitives.asymmetric import x25519

    from sora_cli.cameo.store import data_cipher, unseal

    with pytest.raises(CameoDataError):  # without the key, the stolen copy is noise
        unseal(data_cipher(x25519.X25519PrivateKey.generate(), meta["cameo_id"]), meta["cameo_id"],
               "embedding.enc", stolen)
    with pytest.raises(CameoRevoked) as refused:
        book.get("alice")
    assert refused.value.exit_code == ExitCode.POLICY
    assert [h for h, _ in book.gallery()] == ["@bob"] and "@alice" not in book.permitted()
    ok, reason = book.check_use(["alice"], None, "@alice waves")
    assert not ok and "revoked" in reason
    with pytest.raises(CameoRevoked, match="cannot be imported again"):
        book.import_bundle(tmp_path / "old.cameo", PASS)
    assert [(e["handle"], e["status"]) for e in book.list()] == [("bob", "active"), ("alice", "revoked")]
    assert [e["event"] for e in book.audit_log.entries("alice")][-2:] == ["export", "revoke"]
    assert book.audit().ok


def test_revoke_purge_deletes_every_local_video_that_used_the_cameo(book: CameoBook, home: Path) -> None:
    from sora_cli.library import Library
    from sora_cli.requests import Video

    library = Library(book.paths.library_db)
    files = {}
    for vid, params, status in (("video_a", {"cameos": ["alice"]}, "completed"),
                                ("video_draft", {"cameos": ["@alice", "bob"]}, "failed"),
                                ("video_logged", {}, "completed"), ("video_other", {"cameos": ["bob"]}, "completed")):
        files[vid] = home / f"{vid}.mp4"
        files[vid].write_bytes(b"mp4")
        library.save(Video(id=vid, prompt="p", model="tiny", status=status, path=str(files[vid]), parameters=params))
    book.record_use("alice", "video_logged", "bob", SHA)
    book.record_use("alice", "video_gone", None, SHA)  # a use whose video is no longer in the library
    result = book.revoke("alice", purge=True)
    assert sorted(result["purged_videos"]) == ["video_a", "video_draft", "video_gone", "video_logged"]
    assert [f.name for f in files.values() if f.exists()] == ["video_other.mp4"]
    assert [v.id for v in library.list()] == ["video_other"]
    assert book.audit_log.entries("alice")[-1]["event"] == "purge"


def test_the_os_keyring_path_and_a_keyring_that_will_not_forget(book: CameoBook, tmp_path: Path) -> None:
    book.export("alice", tmp_path / "a.cameo", PASS)
    keyring = MemoryKeyring()
    book = CameoBook(paths_of(tmp_path / "keyring-home"), keyring_backend=keyring)
    book.import_bundle(tmp_path / "a.cameo", PASS)
    meta = json.loads((book.root / "alice" / "meta.json").read_text())
    assert meta["data_key"]["store"] == "keyring" and meta["owner_key"] is None
    assert not list((book.root / "keys").glob("cameo-data-*.p8")) and len(keyring.entries) == 2  # data + audit keys
    assert len(book.reference_frames("alice")) == 3
    book.revoke("alice")
    assert len(keyring.entries) == 1  # only the audit key is left
    stubborn = MemoryKeyring()
    book = CameoBook(paths_of(tmp_path / "other"), keyring_backend=stubborn)
    book.import_bundle(tmp_path / "a.cameo", PASS)
    stubborn.refuse_delete = True
    with pytest.raises(CameoDataError, match="could not be destroyed"):
        book.revoke("alice")
    assert not (book.root / "alice").exists()  # the files went anyway, and the failure was said


def test_the_consent_record_is_signed_and_tamper_evident(book: CameoBook) -> None:
    path = book.root / "alice" / "consent.json"
    record = json.loads(path.read_text())
    record["audience"] = "everyone"  # widened by hand, without the owner's key
    path.write_text(json.dumps(record))
    with pytest.raises(ConsentInvalid, match="not validly signed") as refused:
        book.get("alice")
    assert refused.value.exit_code == ExitCode.POLICY
    assert "@alice" not in book.permitted("carol") and "@alice" in dict(book.gallery())  # still protected
    assert not book.check_use(["alice"], "carol", "@alice")[0]
    assert [e["status"] for e in book.list()] == ["invalid", "active"]


def test_audience_grants_and_mutuals(book: CameoBook) -> None:
    assert book.permitted() == {"@alice", "@bob"} and book.permitted("bob") == {"@bob"}
    assert book.grant("alice", ["Bob"]).approved == ("bob",)
    assert book.permitted("bob") == {"@bob"}  # only-me: an approval waits for the audience to allow it
    record = book.grant("alice", audience="approved")
    assert record.version == 3 and record.verify() and book.permitted("bob") == {"@alice", "@bob"}
    assert "@alice" not in book.permitted("carol")
    book.grant("alice", audience="mutuals")
    follows = {("alice", "carol"), ("carol", "alice"), ("alice", "dave")}
    mutual = CameoBook(book.paths, follows=lambda a, b: (a, b) in follows)
    assert "@alice" in mutual.permitted("carol") and "@alice" not in mutual.permitted("dave")
    assert "@alice" not in book.permitted("carol")  # no follow list here: say so, allow nobody extra
    assert "no follow list" in book.check_use(["alice"], "carol", "@alice")[1]
    book.ungrant("alice", ["bob"])
    assert "@alice" not in book.permitted("bob")
    with pytest.raises(UsageError):
        book.ungrant("alice", ["zed"])
    book.grant("alice", audience="everyone")
    assert "@alice" in book.permitted("anyone")
    assert [e["event"] for e in book.audit_log.entries("alice")] == ["enroll", "grant", "grant", "grant", "ungrant",
                                                                      "grant"]


def test_check_use_limits_permission_and_rules(book: CameoBook) -> None:
    assert book.handles_in("@Alice and @bob, mail me at x@example.com; @alice again") == ["alice", "bob"]
    ok, reason = book.check_use(["alice", "bob"], None, "@alice and @bob dance")
    assert ok and "@alice" in reason and "@bob" in reason
    ok, reason = book.check_use(["alice", "bob", "carol"], None, "three")
    assert not ok and "at most 2 cameos" in reason
    ok, reason = book.check_use(["zed"], None, "@zed")
    assert not ok and "no cameo @zed" in reason
    book.set_rules("alice", add=["no political content", "not in ads", "only in daylight"])
    ok, reason = book.check_use(["alice"], None, "@alice giving a campaign speech")
    assert not ok and "no political content" in reason and '"campaign"' in reason
    assert not book.check_use(["alice"], None, "@alice in a TV commercial for soda")[0]
    assert book.check_use(["alice"], None, "@alice walking a dog on the beach")[0]
    assert book.prompt_for_model("@alice and @bob dance with @zed") == "Alice and Bob dance with @zed"
    assert "a politician giving a campaign speech" in book.rule_phrases(["alice"])
    assert book.set_rules("alice", remove=["not in ads"]).rules == ("no political content", "only in daylight")


def test_the_audit_log_detects_edits_deletions_reordering_and_truncation(book: CameoBook) -> None:
    for i in range(3):
        book.record_use("alice", f"video_{i}", "bob", SHA)
    with pytest.raises(ValueError, match="sha256"):
        book.record_use("alice", "video_x", "bob", "a prompt in clear text")
    assert [u["data"]["video_id"] for u in book.uses("alice")] == ["video_0", "video_1", "video_2"]
    assert book.audit().ok and book.audit().entries == 5
    log = book.audit_log.path
    original = log.read_text().splitlines(keepends=True)

    def problems(lines: list[str]) -> tuple[str, ...]:
        log.write_text("".join(lines))
        report = book.audit()
        assert not report.ok
        return report.problems

    assert any("changed" in p for p in problems([*original[:3], original[3].replace("bob", "eve"), *original[4:]]))
    assert any("does not follow" in p for p in problems([*original[:2], *original[3:]]))
    assert any("reordered" in p for p in problems([*original[:2], original[3], original[2], *original[4:]]))
    assert any("cut off" in p for p in problems(original[:-1]))
    log.write_text("".join(original))
    assert book.audit().ok


def test_bundles_move_a_cameo_with_its_signatures(book: CameoBook, tmp_path: Path) -> None:
    bundle = book.export("alice", tmp_path / "alice.cameo", PASS)
    assert bundle.stat().st_mode & 0o777 == 0o600
    data = json.loads(bundle.read_text())
    assert data["format"] == "sora-cli.cameo-bundle/1" and data["kdf"]["name"] == "scrypt"
    elsewhere = CameoBook(paths_of(tmp_path / "laptop"))
    with pytest.raises(BundleInvalid, match="wrong passphrase"):
        elsewhere.import_bundle(bundle, "not the passphrase")
    for field, value in (("handle", "mallory"), ("payload", data["payload"][:-8] + "AAAAAAA=")):
        (tmp_path / "bad.cameo").write_text(json.dumps(data | {field: value}))
        with pytest.raises(BundleInvalid, match="signature does not verify"):
            elsewhere.import_bundle(tmp_path / "bad.cameo", PASS)
    with pytest.raises(UsageError, match="at least 10"):
        book.export("alice", tmp_path / "x.cameo", "short")
    record = elsewhere.import_bundle(bundle, PASS)
    assert record == book.get("alice") and not elsewhere.owns("alice")
    assert [f.size for f in elsewhere.reference_frames("alice")] == [f.size for f in book.reference_frames("alice")]
    with pytest.raises(CameoRefused, match="imported without the owner key"):
        elsewhere.grant("alice", ["carol"])
    with pytest.raises(UsageError, match="already here"):
        elsewhere.import_bundle(bundle, PASS)
    mine = CameoBook(paths_of(tmp_path / "desktop"))
    mine.import_bundle(book.export("alice", tmp_path / "own.cameo", PASS, include_owner_key=True), PASS)
    assert mine.owns("alice") and mine.grant("alice", ["carol"], audience="approved").verify()
    assert mine.audit().ok and elsewhere.audit().ok


def test_enrolment_refusals(book: CameoBook) -> None:
    with pytest.raises(UsageError, match="no pending challenge"):
        book.enroll(frames=clips.still_clip(4), fps=8.0, handle="carol", name="Carol")
    with pytest.raises(UsageError, match="already enrolled"):
        enrol(book, "alice", name="Alice")
    with pytest.raises(UsageError, match="reserved"):
        enrol(book, "last", name="Last")
    with pytest.raises(UnknownCameo):
        book.get("nobody")
    with pytest.raises(CameoRefused, match="already enrolled as @alice"):  # one person, one cameo
        enrol(book, "collins", name="Eileen")
    assert book.pending_challenge() is None  # an attempt uses the challenge up
