"""API keys: random, shown once, stored only as sha256; the request's user comes from its bearer key.

A key is 256 random bits, so a plain sha256 (no salt, no slow hash) is enough: nobody can guess a
preimage, and the lookup stays one indexed query per request.
"""

from __future__ import annotations

import hashlib
import secrets

from sora_cli.errors import UsageError
from sora_cli.server.store import Store

KEY_PREFIX = "sk-sora-"
ROLES = ("user", "admin")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(store: Store, user_ref: str) -> tuple[dict, str]:
    """A new key for a user: (its row, without the secret; the secret, to show once)."""
    user = store.user(user_ref)
    if user is None:
        raise UsageError(f"no user {user_ref!r}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = store.add_key(user["id"], hash_key(secret), hint=f"{secret[:12]}…{secret[-4:]}")
    return row, secret


def add_user(store: Store, name: str, role: str = "user") -> dict:
    name = name.strip()
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise UsageError("a user name is 1-64 letters, digits, '-', '_' or '.'")
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if store.user(name) is not None:
        raise UsageError(f"user {name!r} exists already")
    return store.add_user(name, role)


def user_for(store: Store, authorization: str | None) -> dict | None:
    """The enabled user whose unrevoked key is in an `Authorization: Bearer …` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return store.user_for_key(hash_key(token.strip()))
