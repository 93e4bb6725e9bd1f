"""The consent record: who consented, when, to which challenge, for which audience, under which rules — signed.

Schema `sora-cli.cameo-consent/1` (a JSON object; the signature covers the canonical JSON of every other field):

    format, cameo_id, handle, name, owner (the owner's handle: the person in the cameo), created_at, updated_at,
    version (1 at enrolment, +1 on every change), challenge {id, turns, phrase, issued_at}, liveness {passed,
    frames, turns_seen, peaks_deg, identity_max_distance, mirrored}, audience (only-me | approved | mutuals |
    everyone), approved [handles], rules [text], voice (bool), reference_frames (count),
    owner_public_key (base64 raw Ed25519), signature (base64 Ed25519 over the rest)

No biometric data: no embedding, frame, voice or landmark is ever part of the record, so it can be shown, logged,
exported and served. The owner's private key signs every version; a record edited on disk (say, an audience
widened to "everyone" by hand) no longer verifies and the cameo is refused until its owner signs it again.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sora_cli.errors import PolicyRefusal, UsageError

FORMAT = "sora-cli.cameo-consent/1"
AUDIENCES = ("only-me", "approved", "mutuals", "everyone")
MAX_RULES = 20
MAX_RULE_CHARS = 200


class ConsentInvalid(PolicyRefusal):
    """A consent record whose signature does not verify: the cameo may not be used (exit 5)."""


class CameoRefused(PolicyRefusal):
    """Enrolment refused (liveness failed, the face is already a cameo), or a cameo that may not be used."""


class CameoRevoked(PolicyRefusal):
    """The cameo was revoked: for good, on this machine."""


class UnknownCameo(UsageError):
    """No cameo with this handle here (exit 2)."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def now_iso(clock: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if clock is None else clock))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def check_audience(audience: str) -> str:
    if audience not in AUDIENCES:
        raise UsageError(f"audience must be one of {', '.join(AUDIENCES)}, not {audience!r}")
    return audience


def check_rule(text: str) -> str:
    rule = " ".join(str(text).split())
    if not rule:
        raise UsageError("a rule needs some text, e.g. \"no political content\"")
    if len(rule) > MAX_RULE_CHARS:
        raise UsageError(f"a rule is at most {MAX_RULE_CHARS} characters")
    return rule


@dataclass(frozen=True)
class ConsentRecord:
    cameo_id: str
    handle: str
    name: str
    owner: str
    created_at: str
    updated_at: str
    challenge: dict[str, Any]
    liveness: dict[str, Any]
    audience: str = "only-me"
    approved: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    voice: bool = False
    reference_frames: int = 0
    version: int = 1
    owner_public_key: str = ""
    signature: str = field(default="", compare=False)
    format: str = FORMAT

    def unsigned(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("signature")
        data["approved"], data["rules"] = list(self.approved), list(self.rules)
        return data

    def to_dict(self) -> dict[str, Any]:
        return {**self.unsigned(), "signature": self.signature}

    @property
    def digest(self) -> str:
        import hashlib

        return hashlib.sha256(canonical(self.to_dict())).hexdigest()

    def signed(self, private_key: Any) -> ConsentRecord:
        """This record signed by the owner's Ed25519 key (its public key is written into the record)."""
        from cryptography.hazmat.primitives import serialization

        public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        record = replace(self, owner_public_key=b64(public))
        return replace(record, signature=b64(private_key.sign(canonical(record.unsigned()))))

    def updated(self, private_key: Any, **changes: Any) -> ConsentRecord:
        """A new signed version with `changes` (audience, approved, rules)."""
        if "audience" in changes:
            check_audience(changes["audience"])
        from cryptography.hazmat.primitives import serialization

        mine = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if b64(mine) != self.owner_public_key:
            raise ConsentInvalid(f"this key is not the owner key of @{self.handle}")
        new = replace(self, **changes, version=self.version + 1, updated_at=now_iso())
        return new.signed(private_key)

    def verify(self) -> ConsentRecord:
        """Raise ConsentInvalid unless the signature verifies with the record's own owner key."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ed25519

        try:
            public = ed25519.Ed25519PublicKey.from_public_bytes(unb64(self.owner_public_key))
            public.verify(unb64(self.signature), canonical(self.unsigned()))
        except (InvalidSignature, ValueError, TypeError):
            raise ConsentInvalid(f"the consent record of @{self.handle} is not validly signed by its owner "
                                 "(altered or damaged): the cameo cannot be used") from None
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConsentRecord:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConsentInvalid("not a sora-cli consent record (format sora-cli.cameo-consent/1)")
        known = set(cls.__dataclass_fields__)
        try:
            fields = {k: v for k, v in data.items() if k in known}
            fields["approved"] = tuple(fields.get("approved", ()))
            fields["rules"] = tuple(fields.get("rules", ()))
            record = cls(**fields)
        except TypeError:
            raise ConsentInvalid("the consent record is missing fields") from None
        if set(data) - known:  # unknown fields would not be covered by our reading of the signature
            raise ConsentInvalid(f"the consent record has unknown fields: {', '.join(sorted(set(data) - known))}")
        return record


def public_key_of(record: ConsentRecord) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PublicKey.from_public_bytes(unb64(record.owner_public_key))
