"""A cameo as one signed, encrypted file, to move it between machines (and, later, between users of a server).

Format `sora-cli.cameo-bundle/1`, a JSON object:

    format, handle, cameo_id, exported_at,
    owner_public_key   base64 raw Ed25519: must equal the consent record's own owner key
    kdf                {"name": "scrypt", "salt": base64 16 bytes, "n": 32768, "r": 8, "p": 1}
    cipher             "AES-256-GCM"
    nonce              base64 12 bytes
    payload            base64 ciphertext; its associated data is the canonical JSON of every field above
    signature          base64 Ed25519 by the owner's key over the canonical JSON of every other field

The payload is a zip: `consent.json` (the signed consent record), `embedding.f32` (128 float32), `frames.zip`
(reference frames as PNG), `voice.bin` (optional) and `manifest.json` ({"voice_suffix", "owner_key"}); with
`include_owner_key` also `owner_key.pem` (PKCS#8), for moving one's own cameo to another of one's own machines,
so it can still be changed (grants, rules) there. Without it the imported copy is read-only there.

Import checks, in this order: the format, the signature (before any decryption: an altered bundle is refused
without trying the passphrase), the passphrase (AES-GCM: a wrong one and an altered payload both fail), then the
consent record's own signature and that its owner key is the bundle's. The data key of the exporting machine
never leaves it: the importing machine makes its own.
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from dataclasses import dataclass, field
from typing import Any

from sora_cli.cameo.consent import ConsentInvalid, ConsentRecord, b64, canonical, now_iso, unb64
from sora_cli.errors import UsageError

FORMAT = "sora-cli.cameo-bundle/1"
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
MIN_PASSPHRASE = 10


class BundleInvalid(ConsentInvalid):
    """A bundle that is not ours, altered, or not signed by the cameo's owner (exit 5)."""


@dataclass
class BundleContents:
    record: ConsentRecord
    embedding: bytes = field(repr=False)  # biometric data stays out of reprs and tracebacks
    frames_zip: bytes = field(repr=False)
    voice: bytes | None = field(repr=False)
    voice_suffix: str | None
    owner_key: Any = field(default=None, repr=False)  # an Ed25519 private key, only if the exporter included it


def _kdf(passphrase: str, salt: bytes, params: dict[str, int]) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    key = Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(passphrase.encode())
    return AESGCM(key)


def check_passphrase(passphrase: str) -> str:
    if len(passphrase or "") < MIN_PASSPHRASE:
        raise UsageError(f"a bundle passphrase needs at least {MIN_PASSPHRASE} characters")
    return passphrase


def pack(contents: BundleContents, owner_signing_key: Any, passphrase: str) -> bytes:
    """The bundle's bytes: payload encrypted under the passphrase, the whole signed with the owner's key."""
    from cryptography.hazmat.primitives import serialization

    check_passphrase(passphrase)
    record = contents.record
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("consent.json", json.dumps(record.to_dict(), ensure_ascii=False))
        archive.writestr("embedding.f32", contents.embedding)
        archive.writestr("frames.zip", contents.frames_zip)
        if contents.voice is not None:
            archive.writestr("voice.bin", contents.voice)
        if contents.owner_key is not None:
            archive.writestr("owner_key.pem", contents.owner_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        archive.writestr("manifest.json", json.dumps({"voice_suffix": contents.voice_suffix,
                                                      "owner_key": contents.owner_key is not None}))
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = {"format": FORMAT, "handle": record.handle, "cameo_id": record.cameo_id, "exported_at": now_iso(),
              "owner_public_key": record.owner_public_key, "kdf": {"name": "scrypt", "salt": b64(salt), **SCRYPT},
              "cipher": "AES-256-GCM", "nonce": b64(nonce)}
    payload = _kdf(passphrase, salt, SCRYPT).encrypt(nonce, buffer.getvalue(), canonical(header))
    bundle = {**header, "payload": b64(payload)}
    bundle["signature"] = b64(owner_signing_key.sign(canonical(bundle)))
    return (json.dumps(bundle) + "\n").encode()


def read_header(data: bytes) -> dict[str, Any]:
    """The bundle's fields, after checking the format and the owner's signature (no passphrase needed)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        bundle = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeError):
        raise BundleInvalid("not a sora-cli cameo bundle (not JSON)") from None
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise BundleInvalid(f"not a sora-cli cameo bundle (format {FORMAT})")
    try:
        public = ed25519.Ed25519PublicKey.from_public_bytes(unb64(bundle["owner_public_key"]))
        public.verify(unb64(bundle["signature"]), canonical({k: v for k, v in bundle.items() if k != "signature"}))
    except (InvalidSignature, KeyError, ValueError, TypeError):
        raise BundleInvalid("the bundle's signature does not verify: it was altered or not made by the cameo's "
                            "owner") from None
    return bundle


def unpack(data: bytes, passphrase: str) -> BundleContents:
    """Verify and decrypt a bundle; every failure is one line that says which check failed."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import serialization

    bundle = read_header(data)
    header = {k: v for k, v in bundle.items() if k not in ("payload", "signature")}
    kdf = bundle.get("kdf") or {}
    if kdf.get("name") != "scrypt" or bundle.get("cipher") != "AES-256-GCM":
        raise BundleInvalid("the bundle uses a key derivation or cipher this version does not know")
    try:
        params = {k: int(kdf[k]) for k in ("n", "r", "p")}
        if params["n"] > 2**20 or params["r"] > 16 or params["p"] > 4:  # a hostile file must not exhaust memory
            raise BundleInvalid("the bundle's scrypt parameters are out of range")
        plain = _kdf(passphrase, unb64(kdf["salt"]), params).decrypt(unb64(bundle["nonce"]), unb64(bundle["payload"]),
                                                                    canonical(header))
    except InvalidTag:
        raise BundleInvalid("the bundle cannot be decrypted: wrong passphrase") from None
    except (KeyError, ValueError, TypeError):
        raise BundleInvalid("the bundle is damaged") from None
    try:
        with zipfile.ZipFile(io.BytesIO(plain)) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            record = ConsentRecord.from_dict(json.loads(archive.read("consent.json"))).verify()
            names = set(archive.namelist())
            voice = archive.read("voice.bin") if "voice.bin" in names else None
            owner_pem = archive.read("owner_key.pem") if "owner_key.pem" in names else None
            contents = BundleContents(record, archive.read("embedding.f32"), archive.read("frames.zip"), voice,
                                      manifest.get("voice_suffix"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        raise BundleInvalid("the bundle's contents are incomplete") from None
    if record.owner_public_key != bundle["owner_public_key"] or record.handle != bundle.get("handle"):
        raise BundleInvalid("the bundle's signer is not the owner named in its consent record")
    if owner_pem is not None:
        key = serialization.load_pem_private_key(owner_pem, password=None)
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if b64(public) != record.owner_public_key:
            raise BundleInvalid("the bundle's owner key does not match its consent record")
        contents.owner_key = key
    return contents
