"""CameoBook: the one object the CLI, the generation path and the server use for cameos.

    book = CameoBook(paths)
    challenge = book.new_challenge()                  # stored as pending; the person records it
    record = book.enroll(Path("me.mp4"), handle="alice", name="Alice")   # liveness, then encrypted storage
    book.grant("alice", ["bob"], audience="approved")
    ok, reason = book.check_use(book.handles_in(prompt), requester="bob", prompt=prompt)
    book.reference_frames("alice")                    # PIL images, decrypted in memory only
    book.record_use("alice", video.id, "bob", prompt_sha256)
    book.revoke("alice", purge=True)                  # key destroyed, files shredded, videos deleted

Handles are stored bare and lower case ("alice"); `gallery()` and `permitted()` return "@alice", the form the
frame checks print. Records, the audit log, manifests and library rows carry handles, never biometric data.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from pathlib import Path
from typing import Any

from sora_cli.cameo import access
from sora_cli.cameo.audit import AUDIT_KEY, AuditLog, AuditReport
from sora_cli.cameo.book_admin import OwnerActions
from sora_cli.cameo.consent import (
    CameoRefused,
    CameoRevoked,
    ConsentInvalid,
    ConsentRecord,
    UnknownCameo,
    check_audience,
    now_iso,
)
from sora_cli.cameo.store import (
    CameoDataError,
    Vault,
    cameos_dir,
    data_cipher,
    png_zip,
    read_json,
    read_voice,
    seal,
    shred_tree,
    unseal,
    write_json,
    write_private,
)
from sora_cli.config import Paths
from sora_cli.errors import PolicyRefusal, UsageError

_SHA256 = re.compile(r"[0-9a-f]{64}")


class CameoBook(OwnerActions):
    def __init__(self, paths: Paths, *, keyring_backend: Any = None, follows: access.Follows | None = None) -> None:
        self.paths = paths
        self.root = cameos_dir(paths)
        self.vault = Vault(paths, keyring_backend)
        self.follows = follows
        self.audit_log = AuditLog(self.root / "audit.jsonl",
                                  lambda: self.vault.load_or_create(AUDIT_KEY, "ed25519", self.root / "audit.key.json"))

    def __repr__(self) -> str:
        return f"CameoBook({str(self.root)!r})"

    # -- where things are ---------------------------------------------------------------------------------------
    def _folder(self, handle: str) -> Path:
        return self.root / handle

    def _tombstone(self, handle: str) -> Path:
        return self.root / "revoked" / f"{handle}.json"

    def _meta(self, handle: str) -> dict[str, Any]:
        return read_json(self._folder(handle) / "meta.json")

    def handles(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and access.HANDLE.fullmatch(p.name)
                      and (p / "consent.json").exists())

    # -- challenge and enrolment --------------------------------------------------------------------------------
    def new_challenge(self) -> Any:
        from sora_cli.cameo.liveness import new_challenge

        challenge = new_challenge()
        write_json(self.root / "pending-challenge.json", challenge.to_dict())
        return challenge

    def pending_challenge(self) -> Any:
        from sora_cli.cameo.liveness import Challenge

        with contextlib.suppress(FileNotFoundError, KeyError, TypeError, ValueError):
            return Challenge.from_dict(read_json(self.root / "pending-challenge.json"))
        return None

    def enroll(self, video: Path | None = None, *, handle: str, name: str, audio: Path | None = None,
               audience: str = "only-me", mirrored: bool = False, frames: Any = None,
               fps: float | None = None, challenge: Any = None) -> ConsentRecord:
        """Check a clip against the pending challenge (or `challenge`, e.g. a server's per-user one) and store the
        cameo, encrypted. Refusals raise."""
        from sora_cli.cameo.liveness import MAX_SECONDS, SAMPLE_FPS, check_clip

        handle, name = access.check_new_handle(handle), " ".join(str(name).split())
        if not name:
            raise UsageError("a cameo needs a display name (--name)")
        check_audience(audience)
        if (self._folder(handle) / "consent.json").exists():
            raise UsageError(f"@{handle} is already enrolled; revoke it first to enrol again")
        challenge = challenge or self.pending_challenge()
        if challenge is None:
            raise UsageError("no pending challenge: run `sora cameo challenge`, record it, then enrol")
        voice = read_voice(audio) if audio is not None else None
        if frames is None:
            from sora_cli.media.inputs import read_video

            if video is None:
                raise UsageError("enrolment needs a video of the challenge")
            clip = read_video(video, fps=SAMPLE_FPS, max_seconds=MAX_SECONDS)  # 8 frames a second are plenty
            frames, fps = clip.frames, clip.fps
        (self.root / "pending-challenge.json").unlink(missing_ok=True)  # one attempt per challenge
        report = check_clip(frames, float(fps or 8.0), challenge, mirrored=mirrored)
        if not report.passed:
            raise CameoRefused(f"enrolment refused: {report.reason}")
        from sora_cli.safety.faces import match_face

        twin = match_face(report.embedding, self.gallery())
        if twin.handle is not None:
            raise CameoRefused(f"enrolment refused: this face is already enrolled as {twin.handle}")
        record = ConsentRecord(
            cameo_id=secrets.token_hex(12), handle=handle, name=name, owner=handle, created_at=now_iso(),
            updated_at=now_iso(), challenge={k: v for k, v in challenge.to_dict().items() if k != "expires_at"},
            liveness=report.summary(), audience=audience, voice=voice is not None,
            reference_frames=len(report.references))
        self._store(record, report.embedding.astype("<f4").tobytes(), png_zip(report.references),
                    voice[0] if voice else None, voice[1] if voice else None, None)
        self.audit_log.append("enroll", handle, cameo_id=record.cameo_id, audience=audience)
        return self.get(handle)

    def _store(self, record: ConsentRecord, embedding: bytes, frames_zip: bytes, voice: bytes | None,
               voice_suffix: str | None, owner_key: Any, *, signed: bool = False) -> None:
        """Write a new cameo folder atomically: a partial folder renamed into place, keys removed on failure."""
        import tempfile

        self.root.mkdir(parents=True, exist_ok=True)
        data_name, owner_name = f"cameo-data-{record.cameo_id}", f"cameo-owner-{record.cameo_id}"
        data_key, data_store = self.vault.create(data_name, "x25519")
        owner_store = None
        partial = Path(tempfile.mkdtemp(prefix=f".{record.handle}.", suffix=".partial", dir=self.root))
        try:
            if not signed:  # a new enrolment: a new owner key signs the record
                owner_key, owner_store = self.vault.create(owner_name, "ed25519")
                record = record.signed(owner_key)
            elif owner_key is not None:  # an import that carries the owner's key
                owner_store = self.vault.save(owner_name, owner_key)
            cipher = data_cipher(data_key, record.cameo_id)
            files = {"embedding.enc": embedding, "frames.enc": frames_zip}
            if voice is not None:
                files["voice.enc"] = voice
            for file_name, data in files.items():
                write_private(partial / file_name, seal(cipher, record.cameo_id, file_name, data))
            write_json(partial / "meta.json", {
                "cameo_id": record.cameo_id, "data_key": {"name": data_name, "store": data_store},
                "owner_key": {"name": owner_name, "store": owner_store} if owner_store else None,
                "voice_suffix": voice_suffix})
            write_json(partial / "consent.json", record.to_dict())
            partial.rename(self._folder(record.handle))
        except BaseException:
            shred_tree(partial)
            with contextlib.suppress(Exception):
                self.vault.destroy(data_name, data_store)
                if owner_store:
                    self.vault.destroy(owner_name, owner_store)
            raise
        self._tombstone(record.handle).unlink(missing_ok=True)

    # -- reading ------------------------------------------------------------------------------------------------
    def get(self, handle: str) -> ConsentRecord:
        """The cameo's consent record, signature verified; unknown, revoked and altered cameos raise."""
        handle = access.normalize_handle(handle)
        try:
            data = read_json(self._folder(handle) / "consent.json")
        except FileNotFoundError:
            tomb = self._tombstone(handle)
            if tomb.exists():
                revoked = read_json(tomb).get("revoked_at", "?")
                raise CameoRevoked(f"the cameo @{handle} was revoked ({revoked}): it cannot be used") from None
            raise UnknownCameo(f"no cameo @{handle} on this machine") from None
        record = ConsentRecord.from_dict(data).verify()
        if record.handle != handle or record.cameo_id != self._meta(handle).get("cameo_id"):
            raise ConsentInvalid(f"the consent record in {self._folder(handle)} is not @{handle}'s")
        return record

    def list(self) -> list[dict[str, Any]]:
        """Every cameo here: handle, status (active | invalid | revoked), and its record when it verifies."""
        out: list[dict[str, Any]] = []
        for handle in self.handles():
            try:
                record = self.get(handle)
                out.append({"handle": handle, "status": "active", "record": record,
                            "owner_here": self.owns(handle)})
            except PolicyRefusal as exc:
                out.append({"handle": handle, "status": "invalid", "record": None, "reason": str(exc)})
        tombs = self.root / "revoked"
        for path in sorted(tombs.glob("*.json")) if tombs.is_dir() else []:
            out.append({"handle": path.stem, "status": "revoked", "record": None, **read_json(path)})
        return out

    def owns(self, handle: str) -> bool:
        """Does this machine hold the cameo's owner key (it can sign changes; its local user is the owner)?"""
        return self._meta(access.normalize_handle(handle)).get("owner_key") is not None

    def _cipher(self, handle: str) -> tuple[Any, str]:
        meta = self._meta(handle)
        key = self.vault.load(meta["data_key"]["name"], meta["data_key"]["store"])
        return data_cipher(key, meta["cameo_id"]), meta["cameo_id"]

    def _decrypt(self, handle: str, file_name: str) -> bytes:
        cipher, cameo_id = self._cipher(handle)
        return unseal(cipher, cameo_id, file_name, (self._folder(handle) / file_name).read_bytes())

    def gallery(self) -> list[tuple[str, Any]]:
        """(@handle, 128-d descriptor) of every cameo whose data decrypts, valid record or not: a cameo whose
        record was tampered with still protects its face in made videos (it just cannot be used)."""
        import numpy as np

        out = []
        for handle in self.handles():
            with contextlib.suppress(CameoDataError, OSError, KeyError, ValueError, UsageError):
                vector = np.frombuffer(self._decrypt(handle, "embedding.enc"), dtype="<f4").copy()
                out.append((f"@{handle}", vector))
        return out

    def permitted(self, requester: str | None = None) -> set[str]:
        """The @handles `requester` may use (None: the local user, owner of the cameos whose key is here)."""
        return {f"@{h}" for h in self.handles() if self._decide(h, requester).allowed}

    def _decide(self, handle: str, requester: str | None) -> access.AccessDecision:
        try:
            record = self.get(handle)
        except PolicyRefusal as exc:
            return access.AccessDecision(False, str(exc))
        return access.may_use(owner=record.owner, audience=record.audience, approved=record.approved,
                              requester=None if requester is None else access.normalize_handle(requester),
                              local_owner=self.owns(handle), follows=self.follows)

    def reference_frames(self, handle: str) -> list[Any]:
        """The reference frames as PIL images, decrypted in memory (for VACE `reference_images`)."""
        import io
        import zipfile

        from PIL import Image

        self.get(handle)
        with zipfile.ZipFile(io.BytesIO(self._decrypt(access.normalize_handle(handle), "frames.enc"))) as archive:
            return [Image.open(io.BytesIO(archive.read(n))).convert("RGB") for n in sorted(archive.namelist())]

    def voice(self, handle: str) -> tuple[bytes, str] | None:
        """The voice sample's bytes and file suffix, decrypted in memory; None when none was given."""
        handle = access.normalize_handle(handle)
        if not self.get(handle).voice:
            return None
        return self._decrypt(handle, "voice.enc"), self._meta(handle).get("voice_suffix") or ".bin"

    # -- using a cameo ------------------------------------------------------------------------------------------
    handles_in = staticmethod(access.handles_in)

    def check_use(self, handles: list[str], requester: str | None, prompt: str,
                  encoder: Any = None) -> tuple[bool, str]:
        """May `requester` make this video with these cameos? At most two, each permitted, no rule broken."""
        from sora_cli.cameo.rules import check_rules

        wanted = list(dict.fromkeys(access.normalize_handle(h) for h in handles))
        if len(wanted) > access.MAX_PER_VIDEO:
            return False, (f"at most {access.MAX_PER_VIDEO} cameos per video; this one asks for {len(wanted)}: "
                           + ", ".join(f"@{h}" for h in wanted))
        reasons = []
        for handle in wanted:
            try:
                record = self.get(handle)
            except (UsageError, PolicyRefusal) as exc:
                return False, str(exc)
            decision = self._decide(handle, requester)
            if not decision.allowed:
                return False, f"may not use @{handle}: {decision.reason}"
            verdict = check_rules(record.rules, prompt, encoder)
            if not verdict.allowed:
                return False, f"may not use @{handle} here: {verdict.reason}"
            reasons.append(f"@{handle} ({decision.reason})")
        return True, "cameos: " + (", ".join(reasons) or "none")

    def rule_phrases(self, handles: list[str]) -> list[str]:
        """What the owners' rules forbid, as sentences: extra examples for the moderation model layer."""
        from sora_cli.cameo.rules import moderation_phrases

        return moderation_phrases([r for h in handles for r in self.get(h).rules])

    def prompt_for_model(self, prompt: str) -> str:
        """The prompt with @handles replaced by the cameos' display names, for the text encoder."""
        names = {}
        for handle in access.handles_in(prompt):
            with contextlib.suppress(UsageError, PolicyRefusal):
                names[handle] = self.get(handle).name
        return access.replace_mentions(prompt, names)

    def record_use(self, handle: str, video_id: str, requester: str | None, prompt_sha256: str) -> dict[str, Any]:
        """Append a use to the audit log: ids and the prompt's hash only (never the prompt or a face)."""
        if not _SHA256.fullmatch(prompt_sha256 or ""):
            raise ValueError("record_use takes the prompt's sha256 (64 hex digits), not the prompt")
        return self.audit_log.append("use", access.normalize_handle(handle), video_id=video_id,
                                     requester=requester, prompt_sha256=prompt_sha256)

    def match_output(self, frames: Any, handles: list[str], sample: int = 8) -> dict[str, dict[str, Any]]:
        """Does the made video ([F, H, W, 3]) show each cameo? Per handle: found, best distance, frames matched."""
        from sora_cli.safety.faces import TOLERANCE, detect_faces, match_face
        from sora_cli.safety.frames import _frames, sample_indices

        wanted = {f"@{access.normalize_handle(h)}" for h in handles}
        gallery = [(h, v) for h, v in self.gallery() if h in wanted]
        arr = _frames(frames)
        found: dict[str, dict[str, Any]] = {h[1:]: {"found": False, "distance": None, "frames": 0} for h in wanted}
        for i in sample_indices(len(arr), sample):
            for face in detect_faces(arr[i]):
                for handle, vector in gallery:
                    distance = round(match_face(face.embedding, [(handle, vector)]).distance, 3)
                    entry = found[handle[1:]]
                    entry["frames"] += distance < TOLERANCE
                    entry["found"] = entry["found"] or distance < TOLERANCE
                    if entry["distance"] is None or distance < entry["distance"]:
                        entry["distance"] = distance
        return found

    def uses(self, handle: str) -> list[dict[str, Any]]:
        return self.audit_log.entries(access.normalize_handle(handle), "use")

    def audit(self) -> AuditReport:
        """Verify the audit log; an empty log while cameos (or tombstones) exist means it was deleted."""
        from dataclasses import replace

        report = self.audit_log.verify()
        tombs = self.root / "revoked"
        if report.entries == 0 and (self.handles() or (tombs.is_dir() and any(tombs.iterdir()))):
            return replace(report, ok=False, problems=(*report.problems, "the audit log is missing or empty, yet "
                                                       "cameos were enrolled here: it was deleted"))
        return report
