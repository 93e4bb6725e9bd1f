"""Where private signing keys live: the OS keyring, or an encrypted file when no keyring can be used.

Preferred: `keyring` (service "sora-cli"), i.e. the OS credential store (Secret Service, macOS Keychain, Windows
Credential Locker), which keeps the key out of the user's files and behind the login session.

Fallback, when keyring has no usable backend (`NoKeyringError`, the `fail` or `null` backends, or a backend that
errors): the key is written as PKCS#8 encrypted with the best available scheme of `cryptography` (PBES2, AES-256),
mode 0600, under the data folder; the random passphrase sits in a separate 0600 file under the *config* folder
(or comes from the `SORA_KEY_PASSPHRASE` environment variable, which then is never written anywhere).

The PKCS#8 envelope is PBES2 with AES-256-CBC and PBKDF2-SHA256 at cryptography's fixed 2,048 rounds: cheap,
which is fine for the random 256-bit passphrase we generate, but means a `SORA_KEY_PASSPHRASE` must itself be
long and random (a memorable one could be guessed offline from a stolen key file).

Threat model, honestly: the fallback protects against the key file travelling alone — a copied or backed-up
`keys/` folder, a key file attached by mistake, a world-readable home. It does NOT protect against anyone who can
read the user's files (malware running as the user, root, a full-disk backup): they get both files and so the key.
That attacker also defeats most keyrings of an unlocked session. To do better, set `SORA_KEY_PASSPHRASE` from a
secret manager, or sign through an HSM/KMS with `keys.CallbackSigner`.

Secrets never appear in exceptions, reprs or logs: errors name the store and the exception type only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

from sora_cli.errors import SoraError
from sora_cli.media.atomic import atomic_path

SERVICE = "sora-cli"
PASSPHRASE_ENV = "SORA_KEY_PASSPHRASE"


class KeyStoreError(SoraError):
    """A private key could not be stored or loaded; the message never holds key material."""


def usable_keyring(backend: Any) -> bool:
    """False for keyring's placeholder backends (fail, null) and for an empty chainer."""
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return False
    return True


def _key_to_pem(key: Any, password: bytes | None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def _pem_to_key(data: bytes, password: bytes | None) -> Any:
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(data, password=password)


class KeyringStore:
    """Private keys as unencrypted PKCS#8 PEM text in the OS keyring."""

    kind = "keyring"

    def __init__(self, backend: Any, namespace: str) -> None:
        self._backend = backend
        self._namespace = namespace  # distinguishes SORA_HOMEs sharing one keyring

    def __repr__(self) -> str:
        return f"KeyringStore(service={SERVICE!r}, backend={type(self._backend).__name__})"

    def _user(self, name: str) -> str:
        return f"{name}:{self._namespace}"

    def location(self, name: str) -> str:
        return f"OS keyring ({type(self._backend).__module__}), service {SERVICE!r}, user {self._user(name)!r}"

    def save(self, name: str, key: Any) -> None:
        try:
            self._backend.set_password(SERVICE, self._user(name), _key_to_pem(key, None).decode("ascii"))
        except Exception as exc:  # noqa: BLE001 - backends raise anything; the message may echo the secret
            raise KeyStoreError(f"the OS keyring refused the key ({type(exc).__name__})") from None

    def load(self, name: str) -> Any:
        try:
            text = self._backend.get_password(SERVICE, self._user(name))
        except Exception as exc:  # noqa: BLE001
            raise KeyStoreError(f"the OS keyring cannot be read now ({type(exc).__name__})") from None
        if text is None:
            raise KeyStoreError(f"the OS keyring has no entry {self._user(name)!r} in service {SERVICE!r}")
        try:
            return _pem_to_key(text.encode("ascii"), None)
        except (ValueError, TypeError, UnicodeError):
            raise KeyStoreError(f"the OS keyring entry {self._user(name)!r} is not a private key") from None

    def delete(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self._backend.delete_password(SERVICE, self._user(name))


class EncryptedFileStore:
    """Private keys as passphrase-encrypted PKCS#8 files, mode 0600; see the module docstring for what it guards."""

    kind = "file"

    def __init__(self, folder: Path, passphrase_file: Path, environ: dict[str, str] | None = None) -> None:
        self.folder = Path(folder)
        self.passphrase_file = Path(passphrase_file)
        self._environ = os.environ if environ is None else environ

    def __repr__(self) -> str:
        return f"EncryptedFileStore(folder={str(self.folder)!r})"

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.p8"

    def location(self, name: str) -> str:
        source = f"${PASSPHRASE_ENV}" if self._environ.get(PASSPHRASE_ENV) else str(self.passphrase_file)
        return f"encrypted file {self.path(name)} (passphrase in {source})"

    def _passphrase(self, create: bool) -> bytes:
        from_env = self._environ.get(PASSPHRASE_ENV)
        if from_env:
            return from_env.encode("utf-8")
        try:
            return self.passphrase_file.read_bytes().strip()
        except FileNotFoundError:
            if not create:
                raise KeyStoreError(f"the passphrase file {self.passphrase_file} is missing") from None
        self.passphrase_file.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.passphrase_file.parent, 0o700)
        value = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=")
        try:
            fd = os.open(self.passphrase_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race: use theirs
            return self.passphrase_file.read_bytes().strip()
        with os.fdopen(fd, "wb") as handle:
            handle.write(value + b"\n")
        return value

    def save(self, name: str, key: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = _key_to_pem(key, self._passphrase(create=True))
        with atomic_path(self.path(name)) as tmp:
            os.chmod(tmp, 0o600)  # before any byte is written
            tmp.write_bytes(data)

    def load(self, name: str) -> Any:
        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"the key file {self.path(name)} is missing") from None
        try:
            return _pem_to_key(data, self._passphrase(create=False))
        except (ValueError, TypeError):
            raise KeyStoreError(f"the key file {self.path(name)} cannot be decrypted with its passphrase") from None

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()


def namespace_for(folder: Path) -> str:
    """A short stable id of a keys folder, so two SORA_HOMEs never share keyring entries."""
    return hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:12]


def open_store(kind: str | None, keys_dir: Path, passphrase_file: Path, keyring_backend: Any = None) -> Any:
    """The store named `kind` ("keyring" / "file"), or for None the best one available now."""
    file_store = EncryptedFileStore(keys_dir, passphrase_file)
    if kind == "file":
        return file_store
    if keyring_backend is None:
        try:
            import keyring

            keyring_backend = keyring.get_keyring()
        except Exception as exc:  # noqa: BLE001 - a broken keyring install must not stop signing
            if kind == "keyring":
                raise KeyStoreError(f"the OS keyring cannot be loaded ({type(exc).__name__})") from None
            return file_store
    if kind == "keyring":
        return KeyringStore(keyring_backend, namespace_for(keys_dir))
    return KeyringStore(keyring_backend, namespace_for(keys_dir)) if usable_keyring(keyring_backend) else file_store


def save_with_fallback(store: Any, name: str, key: Any, keys_dir: Path, passphrase_file: Path) -> Any:
    """Save into `store`; if a keyring refuses it, save into the encrypted file store. Returns the store used."""
    try:
        store.save(name, key)
        return store
    except KeyStoreError:
        if isinstance(store, EncryptedFileStore):
            raise
    fallback = EncryptedFileStore(keys_dir, passphrase_file)
    fallback.save(name, key)
    return fallback
