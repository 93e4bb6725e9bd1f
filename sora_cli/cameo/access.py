"""Who may use a cameo, and which cameos a prompt names.

Audience (set by the owner, in the signed consent record):

    only-me   the owner only
    approved  the owner and the handles on the record's approved list
    mutuals   the owner, the approved list, and people who follow the owner and whom the owner follows
    everyone  anyone

Follows come with the feed / server issue, so they are a parameter here: `follows(a, b) -> bool` ("a follows b").
Without it, "mutuals" admits only the owner and the approved list, and says why.

Requesters are handles. `None` is the person at this machine's keyboard: on the machine that holds a cameo's
owner key that person is treated as its owner (a CLI is single-user); a server always passes the authenticated
user's handle, never None.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sora_cli.errors import UsageError

MAX_PER_VIDEO = 2
# 2-30 characters, lowercase letters, digits, "_" and "-", not ending in "-"; "@last" means a library video
HANDLE = re.compile(r"[a-z0-9][a-z0-9_-]{0,28}[a-z0-9_]")
RESERVED = frozenset({"last", "me", "everyone", "all"})
# a mention: "@alice" not preceded by a word character, "@" or "." (so e-mail addresses are not mentions)
MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9][A-Za-z0-9_-]{0,28}[A-Za-z0-9_])(?![A-Za-z0-9_@])")

Follows = Callable[[str, str], bool]


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str


def normalize_handle(text: str) -> str:
    """A handle as stored: no leading "@", lower case (handles are case-insensitive)."""
    handle = str(text).strip().removeprefix("@").lower()
    if not HANDLE.fullmatch(handle):
        raise UsageError(f"{text!r} is not a cameo handle (2-30 of a-z 0-9 _ -, e.g. alice or bob_s)")
    return handle


def check_new_handle(text: str) -> str:
    handle = normalize_handle(text)
    if handle in RESERVED:
        raise UsageError(f"@{handle} is reserved; pick another handle")
    return handle


def handles_in(prompt: str) -> list[str]:
    """The handles a prompt mentions as @handle, in order of first mention, lower case (reserved words, which
    can never be cameos, are not mentions)."""
    found = (m.group(1).lower() for m in MENTION.finditer(prompt or ""))
    return list(dict.fromkeys(h for h in found if h not in RESERVED))


def replace_mentions(prompt: str, names: dict[str, str]) -> str:
    """The prompt with each @handle in `names` replaced by its display name (what a text encoder should read)."""
    def swap(match: re.Match[str]) -> str:
        return names.get(match.group(1).lower(), match.group(0))

    return MENTION.sub(swap, prompt or "")


def may_use(*, owner: str, audience: str, approved: tuple[str, ...] | list[str], requester: str | None,
            local_owner: bool, follows: Follows | None = None) -> AccessDecision:
    """May `requester` use the cameo of `owner`? The decision and its reason, in words."""
    who = "you" if requester is None else f"@{requester}"
    if (requester is None and local_owner) or requester == owner:
        return AccessDecision(True, f"{who} own @{owner}")
    if requester is None:
        return AccessDecision(False, f"@{owner}'s cameo was imported: set your handle (sora config set handle "
                                     "NAME) so its audience can be checked")
    if audience == "everyone":
        return AccessDecision(True, f"@{owner} shares this cameo with everyone")
    if audience == "only-me":
        return AccessDecision(False, f"@{owner} keeps this cameo to themself (audience only-me)")
    if requester in approved:
        return AccessDecision(True, f"@{owner} approved {who}")
    if audience == "approved":
        return AccessDecision(False, f"@{owner} has not approved {who} (audience: approved people)")
    if follows is None:
        return AccessDecision(False, f"@{owner} shares with mutuals, and no follow list is available here to "
                                     f"tell whether {who} is one")
    if follows(owner, requester) and follows(requester, owner):
        return AccessDecision(True, f"{who} and @{owner} follow each other")
    return AccessDecision(False, f"{who} and @{owner} do not follow each other (audience: mutuals)")
