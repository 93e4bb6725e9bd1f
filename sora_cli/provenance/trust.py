"""What c2pa is told to trust, and what its validation codes mean in plain words.

Both the signing and the reading `c2pa.Context` get the full EKU list in `trust.trust_config`: without it a
certificate carrying the C2PA claim-signing or document-signing EKU reads as Invalid. No trust anchors are built
into c2pa-python 0.38, so a reading context trusts exactly the PEM bundle the caller passes (`trust.user_anchors`)
— our own local CA included, which counts only when passed explicitly (`keys.export_ca`).

Network is never used: no remote manifest fetch, no OCSP, no timestamp authority.
"""

from __future__ import annotations

import json
from typing import Any

from sora_cli.errors import UsageError

# Extended Key Usages a signing certificate may carry (OpenSSL store.cfg style: one OID per line).
EKU_OIDS: dict[str, str] = {
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.36": "documentSigning",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "1.3.6.1.4.1.311.76.59.1.9": "Microsoft document signing",
    "1.3.6.1.4.1.62558.2.1": "C2PA claim signing",
}
TRUST_CONFIG = "\n".join(EKU_OIDS) + "\n"

# Failure codes that leave the content intact: who signed (or when) cannot be vouched for, nothing was changed.
EXPIRY_CODES = frozenset({
    "signingCredential.expired", "claimSignature.outsideValidity", "timeStamp.outsideValidity",
    "timeStamp.untrusted", "timeStamp.mismatch", "timeStamp.malformed",
})
TRUST_CODES = EXPIRY_CODES | frozenset({
    "signingCredential.untrusted", "signingCredential.invalid", "signingCredential.ocsp.revoked",
    "signingCredential.ocsp.unknown", "signingCredential.ocsp.inaccessible", "algorithm.deprecated",
})

PLAIN_WORDS: dict[str, str] = {
    "assertion.bmffHash.mismatch": "the video data was changed after signing",
    "assertion.dataHash.mismatch": "the file's bytes were changed after signing",
    "assertion.boxesHash.mismatch": "the file's boxes were changed after signing",
    "assertion.collectionHash.mismatch": "a file of the collection was changed after signing",
    "assertion.hashedURI.mismatch": "a statement in the manifest was changed after signing",
    "assertion.cbor.invalid": "a statement in the manifest is corrupt",
    "assertion.json.invalid": "a statement in the manifest is corrupt",
    "assertion.required.missing": "a statement the manifest needs is missing or unreadable",
    "assertion.missing": "a statement listed in the signed claim is missing",
    "assertion.undeclared": "the manifest holds a statement the signer did not sign",
    "assertion.action.ingredientMismatch": "an action names an ingredient that is not there",
    "assertion.action.malformed": "the list of actions is malformed",
    "claimSignature.mismatch": "the signature does not match the claim (the manifest or its certificate was changed)",
    "claimSignature.missing": "the claim has no signature",
    "claim.missing": "the manifest has no claim",
    "claim.malformed": "the claim is corrupt",
    "claim.cbor.invalid": "the claim is corrupt",
    "claim.required.missing": "the claim lacks a required field",
    "claim.hardBindings.missing": "the manifest is not bound to the file's content",
    "ingredient.hashedURI.mismatch": "an ingredient's manifest was changed after it was recorded",
    "ingredient.manifest.mismatch": "an ingredient's manifest does not match what was recorded",
    "ingredient.claimSignature.mismatch": "an ingredient's signature does not match what was recorded",
    "manifest.multipleParents": "the manifest names more than one parent",
    "manifest.inaccessible": "the manifest is stored elsewhere and could not be reached",
    "algorithm.unsupported": "the manifest uses an algorithm this validator does not support",
    "general.error": "the validator hit an error while checking the manifest",
    "signingCredential.untrusted": "the signer's certificate does not chain to a trusted anchor",
    "signingCredential.expired": "the signing certificate has expired",
    "signingCredential.invalid": "the signing certificate is not valid for signing content",
    "signingCredential.ocsp.revoked": "the signing certificate was revoked",
    "signingCredential.ocsp.unknown": "the revocation status of the signing certificate is unknown",
    "claimSignature.outsideValidity": "the signature was made outside the certificate's validity period",
    "timeStamp.untrusted": "the timestamp comes from an authority that is not trusted",
    "timeStamp.outsideValidity": "the timestamp falls outside the certificate's validity period",
    "timeStamp.mismatch": "the timestamp does not match the claim",
    "timeStamp.malformed": "the timestamp is malformed",
    "algorithm.deprecated": "the signature uses a deprecated algorithm",
}


def plain_words(code: str, detail: str | None = None) -> str:
    """One phrase for a c2pa validation code; c2pa's own explanation for codes we do not know."""
    return PLAIN_WORDS.get(code) or (detail or code)


def load_anchors(pem: bytes | str | None) -> str | None:
    """Check a PEM bundle of trust anchors and return it as text (None stays None)."""
    if pem is None:
        return None
    text = pem.decode("utf-8", "replace") if isinstance(pem, bytes) else pem
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise UsageError("the trust anchors are not a PEM bundle of certificates")
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        raise UsageError("the trust anchors bundle has a certificate that cannot be parsed") from None
    if not certs:
        raise UsageError("the trust anchors bundle holds no certificate")
    return text


def settings(anchors_pem: str | None = None, *, signing: bool = False) -> dict[str, Any]:
    """The settings dict for one c2pa.Context (per instance; the global load_settings is deprecated)."""
    trust: dict[str, Any] = {"trust_config": TRUST_CONFIG}
    if anchors_pem:
        trust["user_anchors"] = anchors_pem
    config: dict[str, Any] = {
        "version": 1,
        "trust": trust,
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True},
    }
    if signing:
        config["verify"]["verify_after_sign"] = True
        # MP4 gets no automatic thumbnail anyway; we add our own as a resource. Our actions are explicit.
        config["builder"] = {
            "thumbnail": {"enabled": False},
            "actions": {
                "auto_created_action": {"enabled": False},
                "auto_opened_action": {"enabled": False},
                "auto_placed_action": {"enabled": False},
            },
        }
    return config


def make_context(anchors_pem: str | None = None, *, signing: bool = False) -> Any:
    """A fresh c2pa.Context with our settings (c2pa imported here, never at module import)."""
    import c2pa

    return c2pa.Context.from_json(json.dumps(settings(anchors_pem, signing=signing)))
