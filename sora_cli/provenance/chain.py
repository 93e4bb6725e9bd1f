"""Certificate checks: what a signing chain needs before c2pa will sign with it, said in one line when it fails.

c2pa (0.91 core) demands of the end-entity certificate: not a CA, not self-signed, KeyUsage digitalSignature, an
accepted EKU (see `trust.EKU_OIDS`), an AuthorityKeyIdentifier, valid at the time of signing (an expired one is
refused at signing time: "the certificate was not valid at time of signing"). We check the same things first so
that `sora keys import` fails with a sentence instead of a c2pa error at the first `generate`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sora_cli.errors import UsageError
from sora_cli.provenance.trust import EKU_OIDS

ALGORITHMS = ("es256", "es384", "es512", "ps256", "ed25519")
_CURVES = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}


def load_certs(pem: bytes, source: str = "the certificate chain") -> list[Any]:
    """All certificates of a PEM bundle, in order; UsageError when there are none or one is damaged."""
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise UsageError(f"{source} is not a PEM bundle of certificates (or one of them is damaged)") from None
    if not certs:
        raise UsageError(f"{source} holds no certificate")
    return certs


def name_of(name: Any, attr: str | None = None) -> str:
    """'CN=..., O=...' for an x509.Name, or the value of one attribute ('CN', 'O')."""
    from cryptography.x509.oid import NameOID

    oids = {"CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "C": NameOID.COUNTRY_NAME}
    if attr is not None:
        values = name.get_attributes_for_oid(oids[attr])
        return str(values[0].value) if values else ""
    parts = [f"{short}={name.get_attributes_for_oid(oid)[0].value}" for short, oid in oids.items()
             if name.get_attributes_for_oid(oid)]
    return ", ".join(parts) or name.rfc4514_string()


def fingerprint(cert: Any) -> str:
    """SHA-256 of the DER certificate, hex, colon-separated like openssl prints it."""
    from cryptography.hazmat.primitives import serialization

    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def algorithm_of(key: Any) -> str:
    """The COSE algorithm name for a private or public key object."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if key.curve.name in _CURVES:
            return _CURVES[key.curve.name]
        raise UsageError(f"the EC curve {key.curve.name} cannot sign C2PA manifests; use P-256, P-384 or P-521")
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise UsageError(f"an RSA key of {key.key_size} bits is too short; C2PA needs at least 2048")
        return "ps256"
    raise UsageError(f"a {type(key).__name__} cannot sign C2PA manifests; use EC P-256, Ed25519 or RSA")


def _extension(cert: Any, kind: Any) -> Any:
    from cryptography import x509

    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _issued_by(cert: Any, issuer: Any) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:  # noqa: BLE001 - ValueError, TypeError, InvalidSignature all mean "no"
        return False


def _public_der(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_chain(certs: list[Any], key: Any = None, now: dt.datetime | None = None) -> str:
    """Check a leaf-first chain (and its private key) the way c2pa will; returns the algorithm name."""
    from cryptography import x509

    now = now or dt.datetime.now(dt.UTC)
    leaf = certs[0]
    who = f"the signing certificate ({name_of(leaf.subject)})"
    if key is not None and _public_der(key) != _public_der(leaf.public_key()):
        raise UsageError("the private key does not belong to the first certificate of the chain")
    basic = _extension(leaf, x509.BasicConstraints)
    if basic is not None and basic.ca:
        raise UsageError(f"{who} is a CA certificate; C2PA needs an end-entity certificate issued by a CA")
    if leaf.subject == leaf.issuer and _issued_by(leaf, leaf):
        raise UsageError(f"{who} is self-signed; C2PA refuses that: use a certificate issued by a CA")
    usage = _extension(leaf, x509.KeyUsage)
    if usage is None or not usage.digital_signature:
        raise UsageError(f"{who} lacks the digitalSignature key usage")
    ekus = _extension(leaf, x509.ExtendedKeyUsage)
    if ekus is None or not {oid.dotted_string for oid in ekus} & set(EKU_OIDS):
        accepted = ", ".join(EKU_OIDS.values())
        raise UsageError(f"{who} has none of the extended key usages C2PA accepts ({accepted})")
    if _extension(leaf, x509.AuthorityKeyIdentifier) is None:
        raise UsageError(f"{who} lacks an AuthorityKeyIdentifier")
    if now < leaf.not_valid_before_utc:
        raise UsageError(f"{who} is not valid until {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    if now > leaf.not_valid_after_utc:
        raise UsageError(f"{who} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    for index, (cert, issuer) in enumerate(zip(certs, certs[1:], strict=False), start=1):
        if not _issued_by(cert, issuer):
            raise UsageError(f"certificate {index} of the chain was not issued by certificate {index + 1}: "
                             "give the chain leaf first, then each issuer")
        issuer_basic = _extension(issuer, x509.BasicConstraints)
        if issuer_basic is None or not issuer_basic.ca:
            raise UsageError(f"certificate {index + 1} of the chain ({name_of(issuer.subject)}) is not a CA")
    return algorithm_of(key if key is not None else leaf.public_key())
