"""Cameos: a consented likeness, enrolled with a liveness check, stored encrypted, used only as its owner allows.

    from sora_cli.cameo import CameoBook
    book = CameoBook(paths)                  # see book.py for the whole interface

Modules: `liveness` (challenge, head turns from dlib's 68 landmarks), `store` (AES-GCM at rest, keys in the
keystore), `consent` (the signed record), `access` (audience, mentions), `rules` (owners' text rules), `audit`
(hash-chained log), `bundle` (export/import), `book` and `book_admin` (the facade).
Importing this package loads no numpy, dlib, torch or cryptography: those load inside the calls that need them.
"""

from __future__ import annotations

from sora_cli.cameo.access import AccessDecision, handles_in, may_use, normalize_handle, replace_mentions
from sora_cli.cameo.book import CameoBook
from sora_cli.cameo.consent import (
    AUDIENCES,
    CameoRefused,
    CameoRevoked,
    ConsentInvalid,
    ConsentRecord,
    UnknownCameo,
)

__all__ = [
    "AUDIENCES", "AccessDecision", "CameoBook", "CameoRefused", "CameoRevoked", "ConsentInvalid", "ConsentRecord",
    "UnknownCameo", "handles_in", "may_use", "normalize_handle", "replace_mentions",
]
