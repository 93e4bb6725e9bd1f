"""Provenance end to end on real MP4s (ffmpeg) and the real c2pa-python: keys, signing, verdicts, tampering."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import c2pa
import imageio_ffmpeg
import keyring.backend
import keyring.backends.fail
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from sora_cli.config import Paths
from sora_cli.errors import ProvenanceInvalid, UsageError
from sora_cli.provenance import (
    CallbackSigner,
    ProvenanceClaim,
    describe,
    export_ca,
    import_identity,
    load_or_create,
    sign_mp4,
    verify_file,
    verify_many,
)
from sora_cli.provenance.bmff import find_box
from sora_cli.provenance.keystore import KeyStoreError
from sora_cli.provenance.trust import make_context

FAIL = keyring.backends.fail.Keyring()
UTC = dt.UTC


# ---------------------------------------------------------------- helpers


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend that keeps passwords in a dict (what an OS keyring does, minus the OS)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[service, username] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


class LockedKeyring(MemoryKeyring):
    """A backend that exists but refuses writes, like a locked Secret Service collection."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("collection locked; secret was " + password[:40])


def make_clip(path: Path, seed: int = 0, frames: int = 9) -> Path:
    rng = np.random.default_rng(seed)
    writer = imageio_ffmpeg.write_frames(str(path), (64, 64), fps=8, codec="libx264", pix_fmt_out="yuv420p",
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for _ in range(frames):
        writer.send(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8).tobytes())
    writer.close()
    return path


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def claim(**changes) -> ProvenanceClaim:
    values = dict(title="clip.mp4", model_id="tiny-wan", model_hash="ab" * 32, seed=7, steps=2, size="64x64",
                  num_frames=9, fps=8, prompt_sha256=ProvenanceClaim.hash_prompt("a red fox"), cameos=["@ana"],
                  watermark_id=0xDEADBEEF12345678, watermark_alg="org.sora-cli.sslm.1", visible_mark=True)
    values.update(changes)
    return ProvenanceClaim(**values)


def other_chain(common_name: str = "Other Signer", not_after: dt.datetime | None = None):
    """A chain that is not ours, made here with cryptography alone: (leaf-first chain PEM, leaf key, root PEM)."""
    now = dt.datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Other Root"),
                           x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Other Org")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Other Org")]))
            .issuer_name(root_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(not_after or now + dt.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256()))
    pem = [c.public_bytes(serialization.Encoding.PEM) for c in (leaf, root)]
    return pem[0], key, pem[1]


def der_signer(key, chain_pem: bytes) -> CallbackSigner:
    """An "external" signer returning DER ECDSA, the way AWS KMS or an HSM would."""
    return CallbackSigner(lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())), chain_pem, "es256")


def flip(path: Path, offset: int, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def codes(verdict) -> set[str]:
    return {f.code for f in verdict.failures}


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def paths(home: Path) -> Paths:
    return Paths.from_env()


@pytest.fixture
def identity(paths: Paths):
    return load_or_create(paths, keyring_backend=FAIL)


@pytest.fixture
def ca(paths: Paths, identity) -> bytes:
    return export_ca(paths)


@pytest.fixture
def signed(tmp_path: Path, identity) -> Path:
    src = make_clip(tmp_path / "raw.mp4")
    sign_mp4(src, tmp_path / "signed.mp4", claim(), identity, thumbnail_jpeg=jpeg())
    return tmp_path / "signed.mp4"


# ---------------------------------------------------------------- signing and the manifest


def test_real_c2pa_reader_sees_our_manifest(signed: Path, ca: bytes):
    context = make_context(ca.decode())
    with c2pa.Reader(str(signed), context=context) as reader:
        store = json.loads(reader.json())
    assert store["validation_state"] == "Trusted"
    manifest = store["manifests"][store["active_manifest"]]
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    created = assertions["c2pa.actions.v2"]["actions"][0]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    assert created["softwareAgent"]["name"] == "tiny-wan"
    generation = assertions["org.sora-cli.generation"]
    assert generation["seed"] == 7 and generation["cameos"] == ["@ana"] and "prompt" not in generation
    soft = assertions["c2pa.soft-binding"]
    assert soft["alg"] == "org.sora-cli.sslm.1" and soft["blocks"][0]["value"]
    assert manifest["thumbnail"]["format"] == "image/jpeg"
    assert manifest["claim_generator_info"][0]["name"] == "sora-cli"


def test_trusted_with_our_ca_untrusted_without(signed: Path, ca: bytes):
    good = verify_file(signed, trust_anchors_pem=ca)
    assert good.status == "trusted" and good.tree_status == "trusted" and good.ok
    assert good.model == "tiny-wan" and good.claim_generator.startswith("sora-cli/")
    assert good.creation_action["action"] == "c2pa.created"
    assert good.soft_binding["watermark_id"] == 0xDEADBEEF12345678
    assert good.signer["common_name"].startswith("sora-cli signer")
    assert good.signed_time is None  # no timestamp authority: said, not hidden
    assert verify_file(signed).status == "intact_untrusted"
    data = good.to_dict()
    assert json.loads(json.dumps(data)) == data and data["schema"] == "sora-cli.verdict/1"


def test_prompt_travels_only_when_asked_and_thumbnail_is_grabbed(tmp_path: Path, identity, ca: bytes):
    src = make_clip(tmp_path / "raw.mp4")
    info = sign_mp4(src, src, claim(prompt="a red fox"), identity)  # in place, thumbnail from ffmpeg
    assert info["thumbnail"] and info["manifest_label"].startswith("urn:c2pa:")
    verdict = verify_file(src, ca)
    assert verdict.status == "trusted" and verdict.generation["prompt"] == "a red fox"


def test_signing_keeps_the_source_mode(tmp_path: Path, identity):
    src = make_clip(tmp_path / "raw.mp4")
    os.chmod(src, 0o644)
    sign_mp4(src, tmp_path / "out.mp4", claim(), identity, thumbnail_jpeg=jpeg())
    assert stat.S_IMODE((tmp_path / "out.mp4").stat().st_mode) == 0o644


# ---------------------------------------------------------------- tampering


def test_flipped_video_data_is_altered(signed: Path, ca: bytes, tmp_path: Path):
    offset, size = find_box(signed, "mdat")
    verdict = verify_file(flip(signed, offset + size // 2, tmp_path / "t.mp4"), ca)
    assert verdict.status == "altered" and not verdict.ok
    assert "assertion.bmffHash.mismatch" in codes(verdict)
    assert "the video data was changed after signing" in verdict.reason


def test_flipped_assertion_is_altered(signed: Path, ca: bytes, tmp_path: Path):
    at = signed.read_bytes().index(ProvenanceClaim.hash_prompt("a red fox").encode()) + 10
    verdict = verify_file(flip(signed, at, tmp_path / "t.mp4"), ca)
    assert verdict.status == "altered"
    assert "assertion.hashedURI.mismatch" in codes(verdict)


def test_flipped_certificate_is_not_trusted(signed: Path, ca: bytes, paths: Paths, tmp_path: Path):
    leaf = x509.load_pem_x509_certificate((paths.data_dir / "keys" / "chain.pem").read_bytes())
    der = leaf.public_bytes(serialization.Encoding.DER)
    at = signed.read_bytes().index(der) + len(der) // 2
    verdict = verify_file(flip(signed, at, tmp_path / "t.mp4"), ca)
    assert verdict.status == "altered", verdict.to_dict()


def test_reencoded_clip_has_no_manifest(signed: Path, tmp_path: Path):
    out = tmp_path / "reencoded.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(signed), "-c:v", "libx264",
                    str(out)], check=True)
    verdict = verify_file(out)
    assert verdict.status == "no_manifest" and "re-encode" in verdict.reason


@pytest.mark.parametrize("kind, words", [("empty", "empty"), ("truncated", "truncated"), ("text", "text file"),
                                         ("folder", "folder"), ("missing", "no such file")])
def test_unreadable_inputs_get_a_reason(kind: str, words: str, signed: Path, tmp_path: Path):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(signed.read_bytes()[: signed.stat().st_size // 2])
    elif kind == "text":
        path.write_text("this is not a video\n" * 20)
    elif kind == "folder":
        path.mkdir()
    verdict = verify_file(path)
    assert verdict.status == "unreadable" and words in verdict.reason, verdict.reason


def test_random_damage_never_crashes_and_never_reads_trusted_in_the_video(signed: Path, ca: bytes,
                                                                            tmp_path: Path):
    rng = np.random.default_rng(11)
    data = signed.read_bytes()
    mdat, size = find_box(signed, "mdat")
    for i in range(60):
        damaged = bytearray(data)
        if i % 4 == 3:
            damaged = damaged[: int(rng.integers(1, len(data)))]
        else:
            at = int(rng.integers(mdat, mdat + size)) if i % 2 else int(rng.integers(0, len(data)))
            damaged[at] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"d{i}.mp4"
        path.write_bytes(bytes(damaged))
        verdict = verify_file(path, ca)
        json.dumps(verdict.to_dict())
        assert verdict.reason and "\n" not in verdict.reason
        if i % 2 and i % 4 != 3:  # a flipped bit in the video data
            assert verdict.status == "altered", (i, verdict.reason)


# ---------------------------------------------------------------- other signers, expiry, remix


def test_other_chain_is_untrusted_until_its_root_is_an_anchor(tmp_path: Path, ca: bytes):
    chain_pem, key, root_pem = other_chain()
    src = make_clip(tmp_path / "raw.mp4", seed=3)
    sign_mp4(src, tmp_path / "other.mp4", claim(), der_signer(key, chain_pem), thumbnail_jpeg=jpeg())
    assert verify_file(tmp_path / "other.mp4", ca).status == "intact_untrusted"
    trusted = verify_file(tmp_path / "other.mp4", ca + root_pem)
    assert trusted.status == "trusted" and trusted.signer["organization"] == "Other Org"


def test_expired_certificate_reads_intact_expired(tmp_path: Path):
    not_after = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
    chain_pem, key, root_pem = other_chain(not_after=not_after)
    src = make_clip(tmp_path / "raw.mp4", seed=4)
    sign_mp4(src, tmp_path / "short.mp4", claim(), der_signer(key, chain_pem), thumbnail_jpeg=jpeg())
    assert verify_file(tmp_path / "short.mp4", root_pem).status == "trusted"
    time.sleep(max(0.0, (not_after - dt.datetime.now(UTC)).total_seconds()) + 1.1)
    for anchors in (root_pem, None):
        verdict = verify_file(tmp_path / "short.mp4", anchors)
        assert verdict.status == "intact_expired", verdict.to_dict()
        assert "signingCredential.expired" in codes(verdict) and verdict.ok
    # c2pa refuses to sign with it now; the refusal leaves nothing behind
    with pytest.raises(ProvenanceInvalid, match="not valid at time of signing"):
        sign_mp4(src, tmp_path / "late.mp4", claim(), der_signer(key, chain_pem), thumbnail_jpeg=jpeg())
    assert not (tmp_path / "late.mp4").exists()


def test_remix_of_a_tampered_parent_reports_the_parent(signed: Path, identity, ca: bytes, tmp_path: Path):
    offset, size = find_box(signed, "mdat")
    bad_parent = flip(signed, offset + size // 3, tmp_path / "parent.mp4")
    child = make_clip(tmp_path / "child.mp4", seed=5)
    sign_mp4(child, child, claim(title="remix.mp4"), identity, ingredients=[bad_parent], thumbnail_jpeg=jpeg())
    verdict = verify_file(child, ca)
    assert verdict.status == "trusted"  # the remix itself is intact ...
    assert verdict.creation_action["action"] == "c2pa.opened"
    (parent,) = verdict.ingredients
    assert parent.relationship == "parentOf" and parent.title == "parent.mp4"
    assert parent.status == "altered" and "assertion.bmffHash.mismatch" in codes(parent)
    assert verdict.tree_status == "altered" and not verdict.ok  # ... but its lineage is not


def test_remix_of_a_good_parent_is_trusted_all_the_way(signed: Path, identity, ca: bytes, tmp_path: Path):
    child = make_clip(tmp_path / "child.mp4", seed=6)
    sign_mp4(child, tmp_path / "remix.mp4", claim(), identity, ingredients=[signed], thumbnail_jpeg=jpeg())
    verdict = verify_file(tmp_path / "remix.mp4", ca)
    assert verdict.tree_status == "trusted" and verdict.ingredients[0].status == "trusted"
    assert verdict.ingredients[0].model == "tiny-wan"
    assert verify_file(tmp_path / "remix.mp4").ingredients[0].status == "intact_untrusted"


def test_verify_many_keeps_input_order(signed: Path, tmp_path: Path, ca: bytes):
    unsigned = make_clip(tmp_path / "plain.mp4", seed=9)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    files = [signed, unsigned, empty, signed, unsigned]
    for jobs in (1, 2):
        verdicts = verify_many(files, jobs=jobs, trust_anchors_pem=ca)
        assert [v.path for v in verdicts] == [str(p) for p in files]
        assert [v.status for v in verdicts] == ["trusted", "no_manifest", "unreadable", "trusted", "no_manifest"]


def test_bad_trust_anchors_are_a_usage_error(signed: Path):
    with pytest.raises(UsageError, match="PEM"):
        verify_file(signed, b"not a certificate")


# ---------------------------------------------------------------- atomic signing


def test_failing_sign_leaves_no_file(tmp_path: Path, identity):
    chain_pem, _, _ = other_chain()
    wrong = CallbackSigner(identity.sign_bytes, chain_pem, "es256")  # our key, their certificate
    folder = tmp_path / "clips"
    folder.mkdir()
    src = make_clip(folder / "raw.mp4")
    before = src.read_bytes()
    with pytest.raises(ProvenanceInvalid):
        sign_mp4(src, folder / "out.mp4", claim(), wrong, thumbnail_jpeg=jpeg())
    with pytest.raises(ProvenanceInvalid):
        sign_mp4(src, src, claim(), wrong, thumbnail_jpeg=jpeg())
    assert not (folder / "out.mp4").exists() and src.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["raw.mp4"]  # no temp files either


def test_raising_external_signer_never_leaks_its_message(tmp_path: Path):
    chain_pem, _, _ = other_chain()

    def hsm(data: bytes) -> bytes:
        raise RuntimeError("PIN 123456 rejected")

    with pytest.raises(ProvenanceInvalid) as err:
        sign_mp4(make_clip(tmp_path / "raw.mp4"), tmp_path / "out.mp4", claim(), CallbackSigner(hsm, chain_pem),
                 thumbnail_jpeg=jpeg())
    assert "RuntimeError" in str(err.value) and "123456" not in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "out.mp4").exists()


# ---------------------------------------------------------------- keys


def test_fallback_key_file_is_encrypted_0600_and_reloads(paths: Paths, identity):
    key_file = paths.data_dir / "keys" / "signing-key.p8"
    passphrase = paths.config_dir / "secrets" / "key-passphrase"
    for secret in (key_file, passphrase):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert b"BEGIN PRIVATE KEY" not in key_file.read_bytes()
    assert passphrase.parent != key_file.parent
    again = load_or_create(paths, keyring_backend=FAIL)
    assert again.cert_chain_pem == identity.cert_chain_pem
    assert again.sign_bytes(b"x") and "encrypted file" in describe(paths)["key_location"]
    for text in (repr(identity), repr(identity.signer()), str(describe(paths))):
        assert "PRIVATE KEY" not in text and passphrase.read_text().strip() not in text


def test_broken_passphrase_says_so_without_the_secret(paths: Paths, identity):
    secret_file = paths.config_dir / "secrets" / "key-passphrase"
    secret_file.write_text("wrong-passphrase-value\n")
    with pytest.raises(KeyStoreError) as err:
        load_or_create(paths, keyring_backend=FAIL)
    assert "cannot be decrypted" in str(err.value) and "wrong-passphrase-value" not in str(err.value)


def test_working_keyring_holds_the_key(paths: Paths):
    backend = MemoryKeyring()
    identity = load_or_create(paths, keyring_backend=backend)
    assert not list((paths.data_dir / "keys").glob("*.p8"))
    assert {service for service, _ in backend.items} == {"sora-cli"} and len(backend.items) == 2
    assert load_or_create(paths, keyring_backend=backend).cert_chain_pem == identity.cert_chain_pem
    assert describe(paths, keyring_backend=backend)["key_location"].startswith("OS keyring")


def test_locked_keyring_falls_back_to_the_file(paths: Paths):
    identity = load_or_create(paths, keyring_backend=LockedKeyring())
    assert (paths.data_dir / "keys" / "signing-key.p8").exists() and "encrypted file" in identity.key_location
    assert "collection locked" not in repr(identity)


def test_describe_before_and_after(paths: Paths):
    assert describe(paths)["exists"] is False and not (paths.data_dir / "keys").exists()
    load_or_create(paths, keyring_backend=FAIL)
    info = describe(paths)
    assert info["subject"].startswith("CN=sora-cli signer") and info["issuer"].startswith("CN=sora-cli local CA")
    assert info["ca"]["subject"] == info["issuer"] and len(info["fingerprint_sha256"].split(":")) == 32
    assert not info["expired"] and info["timestamp_authority"] is None


def test_import_a_real_ca_chain(paths: Paths, tmp_path: Path):
    chain_pem, key, root_pem = other_chain("Imported Signer")
    (tmp_path / "chain.pem").write_bytes(chain_pem + root_pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    identity = import_identity(paths, tmp_path / "chain.pem", tmp_path / "key.pem", keyring_backend=FAIL)
    assert export_ca(paths) == root_pem and describe(paths)["source"] == "imported"
    src = make_clip(tmp_path / "raw.mp4")
    sign_mp4(src, src, claim(), identity, thumbnail_jpeg=jpeg())
    assert verify_file(src, export_ca(paths)).signer["common_name"] == "Imported Signer"
    assert verify_file(src, export_ca(paths)).status == "trusted"


def self_signed(key, ca: bool) -> bytes:
    now = dt.datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lonely")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_import_refuses_bad_pairs(paths: Paths, tmp_path: Path):
    chain_pem, _, _ = other_chain()
    stranger = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cases = [(chain_pem, "does not belong"), (self_signed(stranger, ca=True), "CA certificate"),
             (self_signed(stranger, ca=False), "self-signed"), (b"junk", "not a PEM bundle")]
    for pem, words in cases:
        (tmp_path / "chain.pem").write_bytes(pem)
        with pytest.raises(UsageError, match=words):
            import_identity(paths, tmp_path / "chain.pem", tmp_path / "key.pem", keyring_backend=FAIL)
    assert describe(paths)["exists"] is False


def test_local_leaf_near_expiry_is_renewed(paths: Paths, identity):
    from sora_cli.provenance.keys import make_leaf
    from sora_cli.provenance.keystore import EncryptedFileStore

    keys = paths.data_dir / "keys"
    store = EncryptedFileStore(keys, paths.config_dir / "secrets" / "key-passphrase")
    ca_cert = x509.load_pem_x509_certificate((keys / "ca.pem").read_bytes())
    soon = dt.datetime.now(UTC) + dt.timedelta(days=2)
    leaf, key = make_leaf(ca_cert, store.load("ca-key"), "sora-cli signer test", not_after=soon)
    store.save("signing-key", key)
    (keys / "chain.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    renewed = load_or_create(paths, keyring_backend=FAIL)
    cert = x509.load_pem_x509_certificate(renewed.cert_chain_pem)
    assert cert.not_valid_after_utc > soon + dt.timedelta(days=300)
    assert "CN=sora-cli signer test" in cert.subject.rfc4514_string()
