"""Signing identities: a local CA + leaf made on first use, a chain imported from a real CA, or an external signer.

Layout under `paths.data_dir / "keys"`: `ca.pem` (local CA), `chain.pem` (the signing chain handed to c2pa: leaf
first, then intermediates), `root.pem` (an imported chain's root, if given), `identity.json` (algorithm, where the
private key lives). Private keys never sit here in clear: they go to the OS keyring, or to encrypted files when no
keyring is usable (see `keystore` for the threat model).

c2pa refuses a self-signed leaf, so the local identity is a CA (CA:true, keyCertSign) that issues an ES256 leaf
with digitalSignature, the emailProtection EKU, Subject/AuthorityKeyIdentifier, CA:false, valid from now. The
leaf is renewed by the local CA when it is about to expire. Nobody trusts the local CA unless they pass it as a
trust anchor (`export_ca`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sora_cli.config import Paths
from sora_cli.errors import SoraError, UsageError
from sora_cli.media.atomic import atomic_path
from sora_cli.provenance import keystore
from sora_cli.provenance.chain import ALGORITHMS, algorithm_of, check_chain, fingerprint, load_certs, name_of

LEAF_DAYS = 365
CA_DAYS = 3650
RENEW_BEFORE = dt.timedelta(days=14)
SIGNING_KEY, CA_KEY = "signing-key", "ca-key"


@dataclass(frozen=True)
class CallbackSigner:
    """Signs through `sign(data) -> signature` (an HSM, a KMS, a remote service) with a public cert chain.

    For ECDSA the signature may be DER or raw r||s; exceptions raised by `sign` are reported by type only.
    """

    sign: Callable[[bytes], bytes] = field(repr=False)
    cert_chain_pem: bytes = field(repr=False)
    algorithm: str = "es256"

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UsageError(f"signing algorithm {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if b"-----BEGIN CERTIFICATE-----" not in self.cert_chain_pem:
            raise UsageError("the signer's certificate chain is not PEM")

    def __repr__(self) -> str:
        return f"CallbackSigner(algorithm={self.algorithm!r}, certificates={self.cert_chain_pem.count(b'BEGIN CERT')})"

    def to_c2pa(self) -> tuple[Any, list[str]]:
        """A c2pa.Signer and a list that collects the type names of exceptions the callback raised."""
        import c2pa

        failures: list[str] = []

        def guarded(data: bytes) -> bytes:
            # c2pa logs str(exc) of a raising callback; an HSM error text may carry secrets, so never raise.
            try:
                return bytes(self.sign(data))
            except Exception as exc:  # noqa: BLE001
                failures.append(type(exc).__name__)
                return b""

        alg = getattr(c2pa.C2paSigningAlg, self.algorithm.upper())
        return c2pa.Signer.from_callback(guarded, alg, self.cert_chain_pem.decode("ascii")), failures


@dataclass(frozen=True, repr=False)
class SigningIdentity:
    """A certificate chain (PEM, leaf first), the private key handle and its algorithm."""

    cert_chain_pem: bytes
    algorithm: str
    key_location: str
    _key: Any = field(compare=False)

    def __repr__(self) -> str:
        return f"SigningIdentity(subject={self.subject!r}, algorithm={self.algorithm!r}, key in {self.key_location})"

    @property
    def private_key(self) -> Any:
        """The opaque key object (cryptography); its repr shows no key material."""
        return self._key

    @property
    def subject(self) -> str:
        return name_of(load_certs(self.cert_chain_pem)[0].subject)

    def sign_bytes(self, data: bytes) -> bytes:
        """Sign `data` as COSE wants it (raw r||s for ECDSA)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        if self.algorithm == "ed25519":
            return self._key.sign(data)
        if self.algorithm == "ps256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return self._key.sign(data, pss, hashes.SHA256())
        digest, size = {"es256": (hashes.SHA256(), 32), "es384": (hashes.SHA384(), 48),
                        "es512": (hashes.SHA512(), 66)}[self.algorithm]
        r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(digest)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def signer(self) -> CallbackSigner:
        return CallbackSigner(self.sign_bytes, self.cert_chain_pem, self.algorithm)


def keys_dir(paths: Paths) -> Path:
    return paths.data_dir / "keys"


def _passphrase_file(paths: Paths) -> Path:
    # Deliberately another folder than the key files: a copy of keys/ alone does not carry it.
    return paths.config_dir / "secrets" / "key-passphrase"


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialise first-use creation between processes (batch workers) where the OS allows it."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: creation races are unlikely and end in a clear error
        yield
        return
    with open(folder / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "identity.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeError):
        raise SoraError(f"{folder / 'identity.json'} is damaged; move the keys folder away to start afresh") from None


def _read(folder: Path, name: str) -> bytes:
    try:
        return (folder / name).read_bytes()
    except OSError as exc:
        raise SoraError(f"cannot read {folder / name} ({exc.strerror}); move the keys folder away to start afresh") \
            from None


def _write(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(common_name: str, days: int = CA_DAYS) -> tuple[Any, Any]:
    """A self-signed P-256 CA: (certificate, private key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sora-cli local identity")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_leaf(ca_cert: Any, ca_key: Any, common_name: str, *, not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None) -> tuple[Any, Any]:
    """An ES256 end-entity certificate c2pa accepts, issued by `ca_cert`: (certificate, private key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    org = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] + list(org[:1])
    now = _now()
    not_before = not_before or now - dt.timedelta(minutes=5)
    not_after = not_after or min(now + dt.timedelta(days=LEAF_DAYS), ca_cert.not_valid_after_utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _save_meta(folder: Path, **meta: Any) -> None:
    meta = {"version": 1, **meta, "updated_at": _now().isoformat(timespec="seconds")}
    _write(folder / "identity.json", (json.dumps(meta, indent=2) + "\n").encode())


def _create_local(paths: Paths, keyring_backend: Any) -> None:
    folder = keys_dir(paths)
    tag = secrets.token_hex(3)
    ca_cert, ca_key = make_ca(f"sora-cli local CA {tag}")
    leaf, leaf_key = make_leaf(ca_cert, ca_key, f"sora-cli signer {tag}")
    store = keystore.open_store(None, folder, _passphrase_file(paths), keyring_backend)
    store = keystore.save_with_fallback(store, CA_KEY, ca_key, folder, _passphrase_file(paths))
    store.save(SIGNING_KEY, leaf_key)
    _write(folder / "ca.pem", _pem(ca_cert))
    _write(folder / "chain.pem", _pem(leaf))
    _save_meta(folder, source="local", algorithm="es256", key_store=store.kind)


def _renew_leaf(paths: Paths, meta: dict[str, Any], keyring_backend: Any) -> None:
    folder = keys_dir(paths)
    store = keystore.open_store(meta["key_store"], folder, _passphrase_file(paths), keyring_backend)
    ca_cert = load_certs(_read(folder, "ca.pem"))[0]
    old = load_certs(_read(folder, "chain.pem"))[0]
    leaf, leaf_key = make_leaf(ca_cert, store.load(CA_KEY), name_of(old.subject, "CN"))
    store.save(SIGNING_KEY, leaf_key)
    _write(folder / "chain.pem", _pem(leaf))


def _load(paths: Paths, meta: dict[str, Any], keyring_backend: Any) -> SigningIdentity:
    folder = keys_dir(paths)
    store = keystore.open_store(meta.get("key_store"), folder, _passphrase_file(paths), keyring_backend)
    chain_pem = _read(folder, "chain.pem")
    key = store.load(SIGNING_KEY)
    leaf = load_certs(chain_pem)[0]
    if algorithm_of(key) != meta.get("algorithm") or _public(key) != _public(leaf):
        raise SoraError(f"the stored signing key does not match {folder / 'chain.pem'}")
    return SigningIdentity(chain_pem, meta["algorithm"], store.location(SIGNING_KEY), key)


def _public(obj: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    public = obj.public_key()
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_or_create(paths: Paths, *, keyring_backend: Any = None) -> SigningIdentity:
    """The signing identity, made on first use (local CA + leaf); a local leaf near expiry is renewed."""
    folder = keys_dir(paths)
    with _locked(folder):
        meta = _read_meta(folder)
        if meta is None:
            _create_local(paths, keyring_backend)
            meta = _read_meta(folder) or {}
        elif meta.get("source") == "local":
            leaf = load_certs(_read(folder, "chain.pem"))[0]
            if leaf.not_valid_after_utc - _now() < RENEW_BEFORE:
                _renew_leaf(paths, meta, keyring_backend)
        return _load(paths, meta, keyring_backend)


def import_identity(paths: Paths, cert_pem_path: Path, key_pem_path: Path, *, password: bytes | None = None,
                    keyring_backend: Any = None) -> SigningIdentity:
    """Make a chain from a real CA (leaf first) and its private key the signing identity, after checking both."""
    from cryptography.hazmat.primitives import serialization

    try:
        chain_bytes, key_bytes = Path(cert_pem_path).read_bytes(), Path(key_pem_path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(key_bytes, password=password)
    except TypeError:
        raise UsageError(f"{key_pem_path} is encrypted: give its password") from None
    except ValueError:
        raise UsageError(f"{key_pem_path} is not a PEM private key (or the password is wrong)") from None
    certs = load_certs(chain_bytes, source=str(cert_pem_path))
    algorithm = check_chain(certs, key)
    root = certs[-1] if len(certs) > 1 and certs[-1].subject == certs[-1].issuer else None
    folder = keys_dir(paths)
    with _locked(folder):
        store = keystore.open_store(None, folder, _passphrase_file(paths), keyring_backend)
        store = keystore.save_with_fallback(store, SIGNING_KEY, key, folder, _passphrase_file(paths))
        _write(folder / "chain.pem", b"".join(_pem(c) for c in (certs[:-1] if root else certs)))
        if root is not None:
            _write(folder / "root.pem", _pem(root))
        else:
            (folder / "root.pem").unlink(missing_ok=True)
        _save_meta(folder, source="imported", algorithm=algorithm, key_store=store.kind)
        return _load(paths, _read_meta(folder) or {}, keyring_backend)


def export_ca(paths: Paths) -> bytes:
    """The PEM of the root that anchors the current identity: what a verifier passes as a trust anchor."""
    folder = keys_dir(paths)
    meta = _read_meta(folder)
    if meta is None:
        load_or_create(paths)
        meta = _read_meta(folder) or {}
    if meta.get("source") == "imported":
        if not (folder / "root.pem").exists():
            raise UsageError("the imported chain did not include its root certificate: get it from your CA")
        return _read(folder, "root.pem")
    return _read(folder, "ca.pem")


def _cert_info(cert: Any) -> dict[str, Any]:
    return {
        "subject": name_of(cert.subject), "issuer": name_of(cert.issuer),
        "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat(),
        "expired": cert.not_valid_after_utc < _now(), "serial": format(cert.serial_number, "x"),
        "fingerprint_sha256": fingerprint(cert),
    }


def describe(paths: Paths, *, keyring_backend: Any = None) -> dict[str, Any]:
    """What `sora keys show` prints; creates nothing and never touches the private key."""
    folder = keys_dir(paths)
    meta = _read_meta(folder)
    if meta is None:
        return {"exists": False, "keys_dir": str(folder), "note": "an identity is made on first signing"}
    chain = load_certs(_read(folder, "chain.pem"))
    store = keystore.open_store(meta.get("key_store"), folder, _passphrase_file(paths), keyring_backend)
    info: dict[str, Any] = {"exists": True, "keys_dir": str(folder), "source": meta.get("source"),
                            "algorithm": meta.get("algorithm"), **_cert_info(chain[0]),
                            "chain_length": len(chain), "key_location": store.location(SIGNING_KEY),
                            "timestamp_authority": None}
    anchor = folder / ("root.pem" if meta.get("source") == "imported" else "ca.pem")
    info["ca"] = _cert_info(load_certs(_read(folder, anchor.name))[0]) if anchor.exists() else None
    info["chain_sha256"] = hashlib.sha256(_read(folder, "chain.pem")).hexdigest()
    return info
