"""The server's cameo book: "mutuals" read from the server's follows table, and stricter rules for minors.

Admission and every worker process use it, so a job is checked the same way before it is queued and again
before it runs.
"""

from __future__ import annotations

from sora_cli.cameo import CameoBook
from sora_cli.cameo.access import AccessDecision
from sora_cli.config import Paths


class ServerFollows:
    """The cameo book's `Follows` hook on the server's follows table: "a follows b", by user name."""

    def __init__(self, store):
        self.store = store

    def __call__(self, follower: str, followee: str) -> bool:
        return self.store.follows_by_name(follower, followee)


def server_cameo_book(paths: Paths, store) -> CameoBook:
    """The server's CameoBook: "mutuals" checked against the follows table, and a minor admitted only to cameos
    whose owner approved them by name ("everyone" and "mutuals" do not admit minors)."""
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

    return ServerCameoBook(paths, follows=ServerFollows(store))
