"""What only a cameo's owner does: audience and grants, rules, export; and revocation, which anyone here may do.

A mixin of CameoBook (book.py), kept apart so each file stays readable. Every change is a new version of the
consent record signed with the owner's key, and an entry in the audit log.

Revocation, in this order: the data key is destroyed in the keystore and the store is asked for it again to
prove it is gone (the point of no return: every .enc file of the cameo is now noise), the owner key too, the
cameo's files are overwritten and deleted, with `purge` every local video that used the cameo (from the audit
log's uses and from library rows whose parameters list the handle, drafts and failed jobs included) is deleted
with its thumbnail and row, and a tombstone keeps the handle, the cameo id and the record's digest, so the same
cameo cannot be imported back from an old bundle.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sora_cli.cameo import access
from sora_cli.cameo.consent import (
    MAX_RULES,
    CameoRefused,
    CameoRevoked,
    ConsentRecord,
    UnknownCameo,
    check_audience,
    check_rule,
    now_iso,
)
from sora_cli.cameo.store import CameoDataError, read_json, shred_tree, write_json, write_private
from sora_cli.errors import InputError, UsageError


class OwnerActions:
    # provided by CameoBook
    get: Any
    owns: Any
    vault: Any
    audit_log: Any
    paths: Any
    _folder: Any
    _meta: Any
    _tombstone: Any
    _decrypt: Any
    _store: Any
    gallery: Any

    def _owner_key(self, handle: str) -> Any:
        meta = self._meta(handle)
        if meta.get("owner_key") is None:
            raise CameoRefused(f"only @{handle}'s own machine can change or export this cameo (this copy was "
                               "imported without the owner key)")
        return self.vault.load(meta["owner_key"]["name"], meta["owner_key"]["store"])

    def _change(self, handle: str, event: str, audit: dict[str, Any], **changes: Any) -> ConsentRecord:
        record = self.get(handle)
        new = record.updated(self._owner_key(record.handle), **changes)
        write_json(self._folder(record.handle) / "consent.json", new.to_dict())
        self.audit_log.append(event, record.handle, version=new.version, **audit)
        return new

    def grant(self, handle: str, users: list[str] | tuple[str, ...] = (), audience: str | None = None
              ) -> ConsentRecord:
        """Add handles to the approved list and/or set the audience."""
        record = self.get(handle)
        people = [access.normalize_handle(u) for u in users]
        if record.owner in people:
            raise UsageError(f"@{record.owner} owns this cameo: no need to approve them")
        if not people and audience is None:
            raise UsageError("say whom to approve, or --audience")
        approved = tuple(dict.fromkeys([*record.approved, *people]))
        return self._change(record.handle, "grant", {"users": people, "audience": audience},
                            approved=approved, audience=check_audience(audience or record.audience))

    def ungrant(self, handle: str, users: list[str] | tuple[str, ...]) -> ConsentRecord:
        record = self.get(handle)
        people = [access.normalize_handle(u) for u in users]
        unknown = [p for p in people if p not in record.approved]
        if not people or unknown:
            raise UsageError("not on the approved list: " + (", ".join(f"@{p}" for p in unknown) or "nobody named"))
        approved = tuple(p for p in record.approved if p not in people)
        return self._change(record.handle, "ungrant", {"users": people}, approved=approved)

    def set_rules(self, handle: str, add: list[str] | tuple[str, ...] = (),
                  remove: list[str] | tuple[str, ...] = (), clear: bool = False) -> ConsentRecord:
        record = self.get(handle)
        current = [] if clear else list(record.rules)
        for text in map(check_rule, remove):
            if text not in current:
                raise UsageError(f"no rule {text!r} on @{record.handle}")
            current.remove(text)
        current += [t for t in map(check_rule, add) if t not in current]
        if len(current) > MAX_RULES:
            raise UsageError(f"at most {MAX_RULES} rules per cameo")
        return self._change(record.handle, "rules", {"rules": current}, rules=tuple(current))

    def revoke(self, handle: str, *, purge: bool = False) -> dict[str, Any]:
        """Destroy the cameo for good: keys, files, and with `purge` every local video that used it."""
        handle = access.normalize_handle(handle)
        folder = self._folder(handle)
        if not (folder / "meta.json").exists():
            self.get(handle)  # raises: unknown, or already revoked
            raise UnknownCameo(f"no cameo @{handle} on this machine")
        meta = self._meta(handle)
        consent = folder / "consent.json"
        digest = hashlib.sha256(consent.read_bytes()).hexdigest() if consent.exists() else None
        failure = None
        for slot in ("data_key", "owner_key"):
            if meta.get(slot):
                try:
                    self.vault.destroy(meta[slot]["name"], meta[slot]["store"])
                except CameoDataError as exc:  # the files go anyway; the error is raised once they are gone
                    failure = failure or exc
        removed = shred_tree(folder)
        purged = self._purge(handle) if purge else []
        tomb = {"handle": handle, "cameo_id": meta.get("cameo_id"), "revoked_at": now_iso(), "consent_sha256": digest,
                "purged_videos": [p["id"] for p in purged]}
        write_json(self._tombstone(handle), tomb)
        self.audit_log.append("revoke", handle, cameo_id=meta.get("cameo_id"), purge=purge)
        if purge:
            self.audit_log.append("purge", handle, videos=[p["id"] for p in purged])
        if failure is not None:
            raise failure
        return {**tomb, "files_removed": removed, "purged": purged}

    def _purge(self, handle: str) -> list[dict[str, Any]]:
        ids = {e["data"].get("video_id") for e in self.audit_log.entries(handle, "use")} - {None}
        done: list[dict[str, Any]] = []
        if not self.paths.library_db.exists():
            return [{"id": i, "path": None, "deleted": False} for i in sorted(ids)]
        from sora_cli.library import Library

        library = Library(self.paths.library_db)
        for video in list(library.list()):
            named = {str(h).removeprefix("@").lower() for h in video.parameters.get("cameos") or ()}
            if video.id in ids or handle in named:
                for path in (video.path, video.thumbnail_path):
                    if path:
                        Path(path).unlink(missing_ok=True)
                library.delete(video.id)
                done.append({"id": video.id, "path": video.path, "deleted": True})
                ids.discard(video.id)
        return done + [{"id": i, "path": None, "deleted": False} for i in sorted(ids)]

    def export(self, handle: str, path: Path, passphrase: str, *, include_owner_key: bool = False) -> Path:
        """Write the cameo as a signed, passphrase-encrypted bundle (bundle.py), mode 0600."""
        from sora_cli.cameo.bundle import BundleContents, check_passphrase, pack

        check_passphrase(passphrase)
        record = self.get(handle)
        owner_key = self._owner_key(record.handle)
        voice = self._decrypt(record.handle, "voice.enc") if record.voice else None
        contents = BundleContents(record, self._decrypt(record.handle, "embedding.enc"),
                                  self._decrypt(record.handle, "frames.enc"), voice,
                                  self._meta(record.handle).get("voice_suffix"),
                                  owner_key if include_owner_key else None)
        write_private(Path(path), pack(contents, owner_key, passphrase))
        self.audit_log.append("export", record.handle, cameo_id=record.cameo_id, owner_key=include_owner_key)
        return Path(path)

    def import_bundle(self, path: Path, passphrase: str) -> ConsentRecord:
        """Add a cameo from a bundle after checking its signatures; a revoked or duplicate cameo is refused."""
        from sora_cli.cameo.bundle import unpack

        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InputError(f"bundle {path} cannot be read: {exc.strerror}") from None
        contents = unpack(data, passphrase)
        record = contents.record
        tomb = self._tombstone(record.handle)
        if tomb.exists() and read_json(tomb).get("cameo_id") == record.cameo_id:
            raise CameoRevoked(f"@{record.handle} was revoked on this machine: a revoked cameo cannot be imported "
                               "again (its owner can enrol anew)")
        if (self._folder(record.handle) / "consent.json").exists():
            raise UsageError(f"a cameo @{record.handle} is already here")
        import numpy as np

        from sora_cli.safety.faces import match_face

        twin = match_face(np.frombuffer(contents.embedding, dtype="<f4"), self.gallery())
        if twin.handle is not None:
            raise CameoRefused(f"this face is already enrolled here as {twin.handle}")
        self._store(record, contents.embedding, contents.frames_zip, contents.voice, contents.voice_suffix,
                    contents.owner_key, signed=True)
        self.audit_log.append("import", record.handle, cameo_id=record.cameo_id,
                              owner_key=contents.owner_key is not None)
        return self.get(record.handle)
