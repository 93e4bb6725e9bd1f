"""The server's cameo book: "mutuals" read from the server's follows table, and stricter rules for minors; and
what the cameo routes (cameo_routes.py) need around it: per-user enrolment challenges, the jobs that used a
handle, and the removal of other people's drafts when a cameo is revoked.

Admission and every worker process use the book, so a job is checked the same way before it is queued and again
before it runs. On a server a cameo's `owner` is the enrolling user's name (its handle may differ).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sora_cli.cameo import CameoBook
from sora_cli.cameo.access import AccessDecision, handles_in, normalize_handle
from sora_cli.config import Paths
from sora_cli.errors import UsageError

Purge = Callable[[str], list[dict[str, Any]]]


class ServerFollows:
    """The cameo book's `Follows` hook on the server's follows table: "a follows b", by user name."""

    def __init__(self, store):
        self.store = store

    def __call__(self, follower: str, followee: str) -> bool:
        return self.store.follows_by_name(follower, followee)


def server_cameo_book(paths: Paths, store, purge: Purge | None = None) -> CameoBook:
    """The server's CameoBook: "mutuals" checked against the follows table, and a minor admitted only to cameos
    whose owner approved them by name ("everyone" and "mutuals" do not admit minors). `purge(handle)` replaces
    the CLI's purge of library rows on `revoke(purge=True)`: on a server the owner's own videos stay."""
    hook = purge

    class ServerCameoBook(CameoBook):
        def _decide(self, handle: str, requester: str | None) -> AccessDecision:
            decision = super()._decide(handle, requester)
            if not decision.allowed or requester is None:
                return decision
            record = self.get(handle)
            who = requester.lstrip("@").lower()
            if who == record.owner or who in record.approved:
                return decision
            found = store.user(requester)
            if found is not None and store.flags(found["id"])["minor"]:
                return AccessDecision(False, f"@{who} is a minor: only cameos whose owner approved them by name "
                                             f"(@{record.owner}'s audience is {record.audience})")
            return decision

        def assign_owner(self, handle: str, owner: str) -> Any:
            """Make the user `owner` the cameo's owner in its signed record (enrolment names the handle). The
            audit log knows no "owner" event: it is a grant, of ownership."""
            return self._change(handle, "grant", {"owner": owner}, owner=owner)

        def revoke(self, handle: str, *, purge: bool = False) -> dict[str, Any]:
            if purge and hook is None:  # before anything is destroyed
                raise UsageError("a server's book purges through its routes (DELETE /v1/cameos/{handle})")
            return super().revoke(handle, purge=purge)

        def _purge(self, handle: str) -> list[dict[str, Any]]:
            assert hook is not None  # revoke() checked
            return hook(handle)

    return ServerCameoBook(paths, follows=ServerFollows(store))


def handle_of(user: dict) -> str | None:
    """The user's name as a cameo handle / requester (None when the name cannot be one, e.g. "a.b")."""
    with contextlib.suppress(UsageError):
        return normalize_handle(user["name"])
    return None


class UserChallenges:
    """Each user's pending enrolment challenge, a file per user: the CLI's book keeps one pending challenge per
    machine, and a server has many people enrolling at once."""

    def __init__(self, settings) -> None:
        self.folder = settings.root / "cameo-challenges"

    def issue(self, user_id: str) -> Any:
        from sora_cli.cameo.liveness import new_challenge
        from sora_cli.cameo.store import write_json

        challenge = new_challenge()
        write_json(self.folder / f"{user_id}.json", challenge.to_dict())
        return challenge

    def take(self, user_id: str, challenge_id: str) -> Any:
        """The user's pending challenge if it has this id, removed (one attempt per challenge); else None."""
        from sora_cli.cameo.liveness import Challenge

        path = self.folder / f"{user_id}.json"
        try:
            challenge = Challenge.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, KeyError, TypeError, ValueError):
            return None
        if challenge.id != challenge_id:
            return None
        path.unlink(missing_ok=True)
        return challenge


def jobs_using(store, handle: str) -> list[dict]:
    """Every job whose prompt mentions @handle or whose record lists it, drafts and failures included."""
    uses = []
    for job in store.jobs_mentioning(handle):
        cameos = [str(c).lstrip("@").lower() for c in json.loads(job["record"] or "{}").get("cameos", [])]
        if handle in handles_in(job["prompt"]) or handle in cameos:
            uses.append(job)
    return uses


def remove_job(server, job_id: str, wait: float = 60.0) -> bool:
    """Cancel a job if it is queued or running, wait for a running one to stop, then delete it, its feed item
    and its files. False when it was still running after `wait` seconds (it is left cancel-requested)."""
    from sora_cli.server.store import ACTIVE
    from sora_cli.server.worker import spritesheet_path, thumbnail_path

    store = server.store
    job = store.job(job_id)
    if job is None:
        return True
    if job["status"] in ACTIVE:
        server.pool.cancel(job_id)
        deadline = time.monotonic() + wait
        while (job := store.job(job_id)) is not None and job["status"] == "in_progress":
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        if job is None:
            return True
    store.unpublish(job_id)  # the feed item would go with the job (foreign key); said here, not relied on
    if not store.delete_job(job_id):
        return False
    for path in (job["output"], job["input_path"], spritesheet_path(server.settings, job_id),
                 thumbnail_path(server.settings, job) if job["library_id"] else None):
        if path:
            Path(path).unlink(missing_ok=True)
    if job["library_id"]:
        with contextlib.suppress(Exception):  # the library row may be gone already; the job is deleted either way
            server.studio.library.delete(job["library_id"])
    return True


def purge_drafts(server, owner_id: str) -> Purge:
    """The revoke hook: every job that used the handle and is not the owner's own goes, files and feed item too."""
    def purge(handle: str) -> list[dict[str, Any]]:
        done = []
        for job in jobs_using(server.store, handle):
            if job["user_id"] != owner_id:
                done.append({"id": job["id"], "path": job["output"], "deleted": remove_job(server, job["id"])})
        return done

    return purge
