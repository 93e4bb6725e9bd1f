"""Cameo data at rest: one folder per cameo, every biometric file AES-256-GCM under the cameo's own data key.

    paths.data_dir/cameos/
      keys/                  the 0600 encrypted-file fallback of the keystore (empty when the OS keyring is used)
      <handle>/consent.json  the signed consent record (no biometric data: see consent.py)
      <handle>/meta.json     the cameo id and where its keys live (keyring or file); nothing secret
      <handle>/*.enc         embedding, reference frames, voice: b"SCD1" + 12-byte nonce + ciphertext and tag
      revoked/<handle>.json  what is left of a revoked cameo: who, when, the record's digest
      audit.jsonl            the hash-chained log (audit.py)

Keys go through `provenance.keystore`, the same OS-keyring-or-0600-file mechanism as the signing keys. That
store keeps *private keys*, so a cameo's data key is an X25519 private key (32 random bytes in a type the store
already serialises) and the AES key is HKDF-SHA256 of its raw bytes: destroying that one keystore entry leaves
every .enc file of the cameo undecryptable. Owners' consent-signing keys are Ed25519 keys in the same store.

Each file's associated data binds it to its cameo id and file name, so files cannot be swapped between cameos
or renamed. Key material never enters an exception message, a repr, a log or the audit log.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from sora_cli.config import Paths
from sora_cli.errors import InputError, SoraError
from sora_cli.media.atomic import atomic_path
from sora_cli.provenance import keystore

MAGIC = b"SCD1"
_HKDF_INFO = b"sora-cli cameo data key/1 "
MAX_VOICE_BYTES = 20 << 20


class CameoDataError(SoraError):
    """Cameo data that cannot be decrypted or whose key is gone; never carries key material."""


def cameos_dir(paths: Paths) -> Path:
    return paths.data_dir / "cameos"


def _passphrase_file(paths: Paths) -> Path:
    # The same passphrase file the signing keys' fallback uses: one local secret protects every local key file.
    return paths.config_dir / "secrets" / "key-passphrase"


class Vault:
    """Named private keys (cameo data keys, owner and audit signing keys) in the keyring or the 0600 fallback."""

    def __init__(self, paths: Paths, keyring_backend: Any = None) -> None:
        self.paths = paths
        self.folder = cameos_dir(paths) / "keys"
        self._backend = keyring_backend

    def __repr__(self) -> str:
        return f"Vault(folder={str(self.folder)!r})"

    def _store(self, kind: str | None) -> Any:
        return keystore.open_store(kind, self.folder, _passphrase_file(self.paths), self._backend)

    def create(self, name: str, algorithm: str) -> tuple[Any, str]:
        """A new key ("x25519" data key or "ed25519" signing key) saved under `name`: (key, store kind)."""
        from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

        key = x25519.X25519PrivateKey.generate() if algorithm == "x25519" else ed25519.Ed25519PrivateKey.generate()
        return key, self.save(name, key)

    def save(self, name: str, key: Any) -> str:
        """Keep an existing private key (an owner key arriving in a bundle); returns the store kind used."""
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        return keystore.save_with_fallback(self._store(None), name, key, self.folder,
                                           _passphrase_file(self.paths)).kind

    def load(self, name: str, kind: str) -> Any:
        return self._store(kind).load(name)

    def load_or_create(self, name: str, algorithm: str, meta_file: Path) -> Any:
        """A key whose store kind is remembered in `meta_file` (for keys that are not tied to one cameo)."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            return self.load(name, json.loads(meta_file.read_text(encoding="utf-8"))["store"])
        key, kind = self.create(name, algorithm)
        write_json(meta_file, {"name": name, "store": kind})
        return key

    def destroy(self, name: str, kind: str) -> None:
        """Delete the key, and prove it: a key that can still be loaded afterwards is an error."""
        store = self._store(kind)
        path = store.path(name) if kind == "file" else None
        if path is not None and path.exists():
            _overwrite(path)  # best effort against undelete tools; the guarantee is that no copy is loadable
        store.delete(name)
        try:
            store.load(name)
        except keystore.KeyStoreError:
            return
        raise CameoDataError(f"the key {name!r} could not be destroyed in {store.location(name)}")


def data_cipher(key: Any, cameo_id: str) -> Any:
    """The AES-256-GCM cipher of a cameo, from its X25519 data key."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO + cameo_id.encode())
    return AESGCM(hkdf.derive(raw))


def _aad(cameo_id: str, name: str) -> bytes:
    return f"sora-cli cameo/1|{cameo_id}|{name}".encode()


def seal(cipher: Any, cameo_id: str, name: str, data: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return MAGIC + nonce + cipher.encrypt(nonce, data, _aad(cameo_id, name))


def unseal(cipher: Any, cameo_id: str, name: str, blob: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 12 + 16:
        raise CameoDataError(f"cameo file {name} is not sora-cli cameo data")
    try:
        return cipher.decrypt(blob[4:16], blob[16:], _aad(cameo_id, name))
    except InvalidTag:
        raise CameoDataError(f"cameo file {name} cannot be decrypted: altered, or not this cameo's") from None


def write_private(path: Path, data: bytes) -> None:
    """Atomic write of a 0600 file (mode set before any byte is written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        os.chmod(tmp, 0o600)
        tmp.write_bytes(data)


def write_json(path: Path, obj: Any) -> None:
    write_private(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode())


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (ValueError, UnicodeError):
        raise SoraError(f"{path} is damaged (not JSON)") from None


def _overwrite(path: Path) -> None:
    """Overwrite a file with random bytes before unlinking it. Journaling, copy-on-write and SSD wear levelling
    may keep old blocks: that is why the data is encrypted and the key destroyed, which is what makes it gone."""
    with contextlib.suppress(OSError):
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.write(secrets.token_bytes(size))
            handle.flush()
            os.fsync(handle.fileno())


def shred_tree(folder: Path) -> list[str]:
    """Overwrite and delete every file under `folder`, then the folder; returns the names removed."""
    removed = []
    if not folder.exists():
        return removed
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            _overwrite(path)
            removed.append(path.name)
    shutil.rmtree(folder)
    return removed


def read_voice(path: Path) -> tuple[bytes, str]:
    """A voice sample's bytes and suffix, kept as given (no offline speech check: see liveness.py)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"audio {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"audio {path} cannot be read: {exc.strerror}") from None
    if not data:
        raise InputError(f"audio {path} is empty (0 bytes)")
    if len(data) > MAX_VOICE_BYTES:
        raise InputError(f"audio {path} is over {MAX_VOICE_BYTES >> 20} MB; a voice sample needs a few seconds")
    return data, path.suffix.lower() or ".bin"


def png_zip(images: list[Any]) -> bytes:
    """Reference frames (HxWx3 uint8) as one uncompressed zip of PNGs: one file to encrypt."""
    import io
    import zipfile

    from PIL import Image

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i, array in enumerate(images):
            png = io.BytesIO()
            Image.fromarray(array).save(png, format="PNG")
            archive.writestr(f"{i:02d}.png", png.getvalue())
    return buffer.getvalue()
