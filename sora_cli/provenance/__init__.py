"""Provenance: keys and certificates, C2PA signing of MP4s, and verification verdicts.

No Typer or Rich here, and c2pa / cryptography / keyring are imported inside the functions that use them, so
importing this package costs nothing at `sora --help` time.

    from sora_cli.provenance import load_or_create, sign_mp4, verify_file, ProvenanceClaim
    identity = load_or_create(paths)                       # local CA + ES256 leaf on first use
    sign_mp4(src, dst, claim, identity)                    # atomic; src may equal dst
    verify_file(dst, trust_anchors_pem=export_ca(paths))   # Verdict(status="trusted", ...)

Modules: `keys` (identities), `keystore` (where private keys live), `chain` (certificate checks), `trust`
(c2pa contexts and plain words for validation codes), `sign`, `verify`, `bmff` (box-level file checks).
"""

from __future__ import annotations

from sora_cli.provenance.keys import (
    CallbackSigner,
    SigningIdentity,
    describe,
    export_ca,
    import_identity,
    load_or_create,
)
from sora_cli.provenance.sign import ProvenanceClaim, build_manifest, sign_mp4
from sora_cli.provenance.verify import STATUSES, Failure, Verdict, Verifier, verify_file, verify_many

__all__ = [
    "STATUSES",
    "CallbackSigner",
    "Failure",
    "ProvenanceClaim",
    "SigningIdentity",
    "Verdict",
    "Verifier",
    "build_manifest",
    "describe",
    "export_ca",
    "import_identity",
    "load_or_create",
    "sign_mp4",
    "verify_file",
    "verify_many",
]
