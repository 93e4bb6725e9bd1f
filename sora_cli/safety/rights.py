"""The rights registry: copyrighted characters their rights holders opt in, and the scope of each opt-in.

A TOML file that a rights holder or a server admin edits: the one `SORA_RIGHTS` names, else the config folder's
`rights.toml`. With no file, no character is opted in and every prompt naming one is refused.

    [[grant]]
    character = "Pikachu"             # a name from the policy's [characters] table (case-insensitive)
    holder = "The Pokémon Company"    # who opted in; shown in refusals and in `sora policy show`
    uses = ["parody", "fan-art"]      # the uses it covers; leave out for any use
    commercial = false                # does it cover commercial use? (default false)
    users = ["@alice", "@bob"]        # requesters it covers; leave out for everyone
    servers = ["local", "studio"]     # servers it covers ("local" is the CLI on this machine); leave out for all
    since = 2026-01-01                # first day it covers (optional)
    until = 2026-12-31                # last day it covers (optional)
    note = "fan-art programme 2026"   # free text

A prompt naming a character passes when one grant covers the request: the same character; a use the grant lists
(when it lists any: a request that declares no use is then out of scope); noncommercial unless the grant allows
commercial use; a listed user and server (when it lists any); today within since..until. Otherwise it is refused,
and the refusal says which part of the scope did not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sora_cli.config import Paths
from sora_cli.errors import UsageError
from sora_cli.safety.policy import read_toml


@dataclass(frozen=True)
class Grant:
    character: str
    holder: str = ""
    uses: tuple[str, ...] = ()
    commercial: bool = False
    users: tuple[str, ...] = ()
    servers: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    note: str = ""

    def scope(self) -> str:
        parts = [f"uses {', '.join(self.uses)}" if self.uses else "any use",
                 "commercial allowed" if self.commercial else "noncommercial only"]
        if self.users:
            parts.append(f"users {', '.join(self.users)}")
        if self.servers:
            parts.append(f"servers {', '.join(self.servers)}")
        if self.since or self.until:
            parts.append(f"{self.since or '…'} to {self.until or '…'}")
        return "; ".join(parts)

    def refusal(self, use: str | None, commercial: bool, user: str | None, server: str, today: date) -> str | None:
        """Why this grant does not cover the request, or None when it does."""
        if self.since and today < self.since:
            return f"the opt-in starts on {self.since}"
        if self.until and today > self.until:
            return f"the opt-in expired on {self.until}"
        if self.uses and use not in self.uses:
            return f"the opt-in covers only {', '.join(self.uses)} (this request: {use or 'no use declared'})"
        if commercial and not self.commercial:
            return "the opt-in is noncommercial"
        if self.users and user not in self.users:
            return f"the opt-in covers only {', '.join(self.users)}"
        if self.servers and server not in self.servers:
            return f"the opt-in does not cover the server {server!r}"
        return None


@dataclass(frozen=True)
class RightsVerdict:
    character: str
    allowed: bool
    reason: str
    grant: Grant | None = None


@dataclass(frozen=True)
class RightsRegistry:
    grants: tuple[Grant, ...] = ()
    file: str | None = None

    def check(self, character: str, holder: str = "", *, use: str | None = None, commercial: bool = False,
              user: str | None = None, server: str | None = None, today: date | None = None) -> RightsVerdict:
        today = today or date.today()
        server = server or "local"
        mine = [g for g in self.grants if g.character.casefold() == character.casefold()]
        if not mine:
            who = f" by {holder}" if holder else ""
            return RightsVerdict(character, False, f"{character}{who} is not opted in by its rights holder")
        reasons = []
        for grant in mine:
            why = grant.refusal(use, commercial, user, server, today)
            if why is None:
                return RightsVerdict(character, True, f"opted in by {grant.holder or 'its holder'}: {grant.scope()}",
                                     grant)
            reasons.append(why)
        return RightsVerdict(character, False, f"{character}: {'; '.join(dict.fromkeys(reasons))}")

    def describe(self) -> dict[str, Any]:
        return {"file": self.file, "grants": [
            {"character": g.character, "holder": g.holder, "scope": g.scope(), "note": g.note} for g in self.grants]}


def rights_path(paths: Paths, environ: dict[str, str] | None = None) -> Path | None:
    from sora_cli.safety.policy import config_file

    return config_file(paths, "SORA_RIGHTS", "rights.toml", environ)


def load_rights(paths: Paths | None = None, environ: dict[str, str] | None = None,
                known: set[str] | None = None) -> RightsRegistry:
    """The registry from its file (empty without one); `known` character names are checked when given."""
    path = rights_path(paths or Paths.from_env(environ), environ)
    if path is None:
        return RightsRegistry()
    return parse_rights(read_toml(path, "rights file"), str(path), known)


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where} must be a list of strings")
    return tuple(value)


def parse_rights(data: dict[str, Any], where: str = "<rights>", known: set[str] | None = None) -> RightsRegistry:
    grants = []
    lowered = {k.casefold() for k in known} if known is not None else None
    for i, raw in enumerate(data.get("grant") or [], 1):
        name = raw.get("character")
        if not isinstance(name, str) or not name:
            raise UsageError(f"rights file {where}: grant #{i} needs a character")
        if lowered is not None and name.casefold() not in lowered:
            raise UsageError(f"rights file {where}: grant #{i} names {name!r}, which the policy's [characters] lacks")
        for key in ("since", "until"):
            if key in raw and not isinstance(raw[key], date):
                raise UsageError(f"rights file {where}: grant #{i}: {key} must be a date such as 2026-12-31")

        lists = {key: _strs(raw.get(key, []), f"rights file {where}: grant #{i}: {key}")
                 for key in ("uses", "users", "servers")}
        grants.append(Grant(character=name, holder=str(raw.get("holder", "")), **lists,
                            commercial=bool(raw.get("commercial", False)), since=raw.get("since"),
                            until=raw.get("until"), note=str(raw.get("note", ""))))
    return RightsRegistry(tuple(grants), where)
