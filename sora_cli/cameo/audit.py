"""The cameo audit log: append-only JSON lines, each holding the hash of the one before, with a signed head.

    {"seq": 7, "time": "2026-…Z", "event": "use", "handle": "alice", "data": {"video_id": "video_…",
     "requester": "bob", "prompt_sha256": "…"}, "prev": "<hash of entry 6>", "hash": "<sha256 of this entry>"}

`hash` is SHA-256 of the canonical JSON of the entry without `hash`; the first entry's `prev` is 64 zeros.
Editing an entry breaks its hash, deleting or reordering entries breaks `prev` and `seq`. Cutting entries off the
end leaves a valid chain, so after every append the head (`seq`, `hash`) is also written to `audit.head`, signed
with an Ed25519 key kept in the keystore (keyring or 0600 file): a shortened log no longer matches its signed
head. Someone who can read the keystore can rewrite everything; this log is evidence for the owner, not a defence
against the machine's own administrator.

Events: enroll, grant, ungrant, rules, use, export, import, revoke, purge. Entries hold handles, ids and hashes:
never a prompt's text, a face descriptor or a key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sora_cli.cameo.consent import b64, canonical, now_iso, unb64

GENESIS = "0" * 64
EVENTS = ("enroll", "grant", "ungrant", "rules", "use", "export", "import", "revoke", "purge")
AUDIT_KEY = "cameo-audit"


@dataclass(frozen=True)
class AuditReport:
    ok: bool
    entries: int
    problems: tuple[str, ...] = ()
    head: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "problems": list(self.problems), "head": self.head}


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One appender at a time (batch workers, the server's workers) where the OS allows it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path.with_suffix(".lock"), "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class AuditLog:
    def __init__(self, path: Path, key: Any) -> None:
        """`key`: a callable returning the Ed25519 private key that signs the head (loaded only when needed)."""
        self.path = Path(path)
        self.head_path = self.path.with_suffix(".head")
        self._key = key

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def _read(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def append(self, event: str, handle: str, **data: Any) -> dict[str, Any]:
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}")
        from sora_cli.cameo.store import write_private

        with _locked(self.path):
            entries = self._read()
            last = entries[-1] if entries else None
            entry = {"seq": last["seq"] + 1 if last else 0, "time": now_iso(), "event": event, "handle": handle,
                     "data": data, "prev": last["hash"] if last else GENESIS}
            entry["hash"] = entry_hash(entry)
            line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
            fresh = not self.path.exists()
            with open(self.path, "a", encoding="utf-8") as handle_:
                handle_.write(line)
            if fresh:
                self.path.chmod(0o600)
            head = {"seq": entry["seq"], "hash": entry["hash"]}
            head["signature"] = b64(self._key().sign(canonical(head)))
            write_private(self.head_path, (json.dumps(head) + "\n").encode())
        return entry

    def entries(self, handle: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self._read() if (handle is None or e.get("handle") == handle)
                and (event is None or e.get("event") == event)]

    def verify(self) -> AuditReport:
        """Check every hash, every link, the sequence numbers and the signed head."""
        from cryptography.exceptions import InvalidSignature

        problems: list[str] = []
        try:
            entries = self._read()
        except (ValueError, UnicodeError):
            return AuditReport(False, 0, (f"{self.path} has a line that is not JSON",))
        prev = GENESIS
        for i, entry in enumerate(entries):
            where = f"entry {i}"
            if entry.get("seq") != i:
                problems.append(f"{where}: sequence number {entry.get('seq')} (entries deleted or reordered)")
            if entry.get("prev") != prev:
                problems.append(f"{where}: does not follow the entry before it (deleted, inserted or reordered)")
            if entry.get("hash") != entry_hash(entry):
                problems.append(f"{where}: its contents were changed after it was written")
            prev = entry.get("hash", "")
        head: dict[str, Any] = {}
        try:
            head = json.loads(self.head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if entries:
                problems.append("the signed head (audit.head) is missing")
        except (ValueError, UnicodeError):
            problems.append("the signed head (audit.head) is damaged")
        if head:
            try:
                self._key().public_key().verify(unb64(head.get("signature", "")),
                                                canonical({"seq": head.get("seq"), "hash": head.get("hash")}))
            except (InvalidSignature, ValueError, TypeError):
                problems.append("the head's signature does not verify")
            last = entries[-1] if entries else {}
            if (head.get("seq"), head.get("hash")) != (last.get("seq"), last.get("hash")):
                problems.append(f"the log ends at entry {len(entries) - 1} but its signed head is entry "
                                f"{head.get('seq')} (entries cut off the end, or added without the key)")
        return AuditReport(not problems, len(entries), tuple(problems), {k: head.get(k) for k in ("seq", "hash")})
