"""`/v1/cameos`: enrol a likeness (a per-user liveness challenge, then the clip), list and show cameos, set their
audience, approved people and rules, and revoke one for good, which also deletes every draft another user made
with it (the owner's own videos stay).

A cameo is the enrolling user's: its signed record's `owner` is their user name. Its owner sees its settings;
someone it is shared with sees its handle, name and owner; to anyone else it does not exist (404). Every
decision goes through the server's book (cameos.py), so "mutuals" come from the follows table and minors need
approval by name. The two routes on a cameo's uses live in feed.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from sora_cli.cameo.consent import MAX_RULES, CameoRefused, CameoRevoked, UnknownCameo
from sora_cli.errors import InputError, SoraError, UsageError
from sora_cli.server.cameos import UserChallenges, handle_of, purge_drafts, server_cameo_book
from sora_cli.server.deps import ServerState, User, read_body, state, upload_of
from sora_cli.server.schemas import ApiError, not_found

router = APIRouter(tags=["cameos"])
_ENROL_FIELDS = ("challenge_id", "handle", "name", "audience", "mirrored")
_SUFFIX = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm"}


def _book(server: ServerState, purge: Any = None) -> Any:
    return server_cameo_book(server.settings.paths, server.store, purge)


def _audience(value: str | None) -> str | None:
    return None if value is None else str(value).strip().replace("_", "-")  # only_me and only-me alike


def _refusal(exc: SoraError, param: str | None = None) -> ApiError:
    if isinstance(exc, CameoRefused):
        return ApiError(400, str(exc), code="cameo_refused", param=param)
    if isinstance(exc, InputError):
        return ApiError(400, str(exc), code="invalid_input", param=param)
    return ApiError(400, str(exc), code="invalid_value", param=param)


def _settings(record: Any) -> dict[str, Any]:
    """What the owner sees: everything in the signed record but its keys, signature and liveness figures."""
    return {"handle": record.handle, "object": "cameo", "name": record.name, "owner": record.owner,
            "access": "owner", "audience": record.audience, "approved": list(record.approved),
            "rules": list(record.rules), "voice": record.voice, "version": record.version,
            "created_at": record.created_at, "updated_at": record.updated_at}


def _shared(record: Any) -> dict[str, Any]:
    return {"handle": record.handle, "object": "cameo", "name": record.name, "owner": record.owner,
            "access": "permitted"}


def _visible(book: Any, user: dict, handle: str) -> tuple[Any, bool]:
    """(record, owned by the user); 404 for a cameo the user neither owns nor may use (or that is gone)."""
    me = handle_of(user)
    try:
        record = book.get(handle)
    except SoraError:
        raise not_found("cameo", handle) from None
    if me is not None and record.owner == me:
        return record, True
    if me is not None and book._decide(record.handle, me).allowed:
        return record, False
    raise not_found("cameo", handle)


def _owned(book: Any, user: dict, handle: str) -> Any:
    record, owned = _visible(book, user, handle)
    if not owned:
        raise ApiError(403, f"only @{record.owner} can change or revoke @{record.handle}", code="forbidden")
    return record


# -- enrolment ------------------------------------------------------------------------------------------------

@router.post("/v1/cameos/challenge", summary="A liveness challenge to record for enrolment (15 minutes)")
def challenge(request: Request, user: User) -> dict:
    issued = UserChallenges(state(request).settings).issue(user["id"])
    return {**issued.to_dict(), "object": "cameo.challenge", "instructions": issued.instructions()}


def _new_handle(server: ServerState, user: dict, value: Any) -> tuple[str, str]:
    """(the handle, its owner's name as a handle): 400 for a bad handle, 409 for one taken, revoked or another
    user's name."""
    from sora_cli.cameo.access import check_new_handle

    owner = handle_of(user)
    if owner is None:
        raise ApiError(400, f"the user name {user['name']!r} cannot own a cameo (a cameo owner's name is 2-30 of "
                       "a-z 0-9 _ -)", code="invalid_value")
    try:
        handle = check_new_handle(str(value or owner))
    except UsageError as exc:
        raise ApiError(400, str(exc), code="invalid_value", param="handle") from None
    book = _book(server)
    if (book.root / handle).exists():
        raise ApiError(409, f"@{handle} is taken", code="handle_taken", param="handle")
    if (book.root / "revoked" / f"{handle}.json").exists():
        raise ApiError(409, f"@{handle} was revoked: a revoked handle is not enrolled again", code="handle_taken",
                       param="handle")
    if handle != owner and any(u["name"].lower() == handle for u in server.store.users()):
        raise ApiError(409, f"@{handle} is another user's name", code="handle_taken", param="handle")
    return handle, owner


@router.post("/v1/cameos", summary="Enrol your cameo: a clip of you performing your challenge (multipart)")
async def enroll(request: Request, user: User) -> dict:
    server = state(request)
    fields, files = await read_body(request)
    for name in [*(f for f in fields if f not in _ENROL_FIELDS), *(f for f in files if f != "video")]:
        raise ApiError(400, f"unknown parameter: {name!r}", code="unknown_parameter", param=name)
    for name in ("challenge_id", "name"):
        if not str(fields.get(name) or "").strip():
            raise ApiError(400, f"{name} is required", code="missing_required_parameter", param=name)
    if "video" not in files:
        raise ApiError(400, "video is required: your clip performing the challenge", code="missing_required_parameter",
                       param="video")
    handle, owner = _new_handle(server, user, fields.get("handle"))
    upload = await upload_of(files["video"], server.settings, "video", server.settings.video_types)
    challenge = UserChallenges(server.settings).take(user["id"], str(fields["challenge_id"]))
    if challenge is None:
        raise ApiError(400, "no pending challenge with this id: POST /v1/cameos/challenge, record it, then enrol "
                       "(one attempt per challenge)", code="invalid_value", param="challenge_id")
    mirrored = str(fields.get("mirrored", "false")).strip().lower() in ("1", "true", "yes")
    return await run_in_threadpool(_enroll, server, upload, challenge, handle, owner, str(fields["name"]),
                                   _audience(fields.get("audience")) or "only-me", mirrored)


def _enroll(server: ServerState, upload: Any, challenge: Any, handle: str, owner: str, name: str, audience: str,
            mirrored: bool) -> dict:
    book = _book(server)
    folder = server.settings.uploads_dir  # a dot name: removed by recovery if the server dies meanwhile
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".cameo-", suffix=_SUFFIX.get(upload.content_type, ".mp4"),
                                     delete=False) as tmp:
        tmp.write(upload.data)
    try:
        record = book.enroll(Path(tmp.name), handle=handle, name=name, audience=audience, mirrored=mirrored,
                             challenge=challenge)
    except (SoraError, OSError) as exc:  # OSError: the folder's rename lost a race with another enrolment
        if isinstance(exc, UsageError | OSError) and (book.root / handle).exists():  # enrolled meanwhile
            raise ApiError(409, f"@{handle} is taken", code="handle_taken", param="handle") from None
        if not isinstance(exc, SoraError):
            raise
        raise _refusal(exc, "video" if isinstance(exc, CameoRefused | InputError) else None) from None
    finally:
        Path(tmp.name).unlink(missing_ok=True)
    if record.owner != owner:  # the record names the handle; on a server the owner is the user
        try:
            record = book.assign_owner(handle, owner)
        except BaseException:  # never leave a cameo owned by its handle: whoever is named so would own it
            book.revoke(handle)
            raise
    return _settings(record)


# -- reading ------------------------------------------------------------------------------------------------------

@router.get("/v1/cameos", summary="The cameos you own and those you may use")
def list_cameos(request: Request, user: User) -> dict:
    book, me = _book(state(request)), handle_of(user)
    data = []
    for entry in book.list() if me is not None else []:
        record = entry.get("record")
        if entry["status"] != "active" or record is None:
            continue
        if record.owner == me:
            data.append(_settings(record))
        elif book._decide(record.handle, me).allowed:
            data.append(_shared(record))
    return {"object": "list", "data": data, "has_more": False}


@router.get("/v1/cameos/{handle}", summary="A cameo: its settings for its owner, who owns it for others")
def get_cameo(handle: str, request: Request, user: User) -> dict:
    record, owned = _visible(_book(state(request)), user, handle)
    return _settings(record) if owned else _shared(record)


# -- the owner's changes ----------------------------------------------------------------------------------------

class GrantBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audience: str | None = Field(default=None, max_length=20)
    approve: list[str] = Field(default_factory=list, max_length=200)
    unapprove: list[str] = Field(default_factory=list, max_length=200)


def _people(server: ServerState, names: list[str], param: str, owner: str, known: bool) -> list[str]:
    from sora_cli.cameo.access import normalize_handle

    users = {u["name"].lower() for u in server.store.users()} if known else set()
    out = []
    for name in names:
        try:
            who = normalize_handle(name)
        except UsageError as exc:
            raise ApiError(400, str(exc), code="invalid_value", param=param) from None
        if known and who == owner:
            raise ApiError(400, f"@{owner} owns this cameo: no need to approve them", code="invalid_value",
                           param=param)
        if known and who not in users:
            raise ApiError(400, f"no user {name!r} on this server", code="invalid_value", param=param)
        out.append(who)
    return out


@router.post("/v1/cameos/{handle}/grant", summary="Set your cameo's audience and approved people")
def grant(handle: str, body: GrantBody, request: Request, user: User) -> dict:
    from sora_cli.cameo.consent import check_audience

    server = state(request)
    book = _book(server)
    record = _owned(book, user, handle)
    audience = _audience(body.audience)
    if audience is not None:
        try:
            check_audience(audience)
        except UsageError as exc:
            raise ApiError(400, str(exc), code="invalid_value", param="audience") from None
    approve = _people(server, body.approve, "approve", record.owner, known=True)
    unapprove = _people(server, body.unapprove, "unapprove", record.owner, known=False)
    missing = [f"@{p}" for p in unapprove if p not in record.approved]
    if missing:
        raise ApiError(400, "not on the approved list: " + ", ".join(missing), code="invalid_value", param="unapprove")
    if not (approve or unapprove or audience):
        raise ApiError(400, "say whom to approve or unapprove, or the audience", code="missing_required_parameter")
    try:
        if unapprove:
            record = book.ungrant(record.handle, unapprove)
        if approve or audience:
            record = book.grant(record.handle, approve, audience=audience)
    except SoraError as exc:
        raise _refusal(exc) from None
    return _settings(record)


class RulesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[str] = Field(max_length=MAX_RULES)


def _rules(record: Any) -> dict:
    from sora_cli.cameo.rules import parse_rule

    parsed = [parse_rule(r) for r in record.rules]
    return {"handle": record.handle, "object": "cameo.rules",
            "rules": [{"text": r.text, "enforced": r.enforced, "how": r.describe()} for r in parsed]}


@router.get("/v1/cameos/{handle}/rules", summary="Your cameo's text rules and how each is checked")
def get_rules(handle: str, request: Request, user: User) -> dict:
    return _rules(_owned(_book(state(request)), user, handle))


@router.post("/v1/cameos/{handle}/rules", summary="Replace your cameo's text rules ([] clears them)")
def set_rules(handle: str, body: RulesBody, request: Request, user: User) -> dict:
    book = _book(state(request))
    record = _owned(book, user, handle)
    try:
        return _rules(book.set_rules(record.handle, body.rules, clear=True))
    except SoraError as exc:
        raise _refusal(exc, "rules") from None


@router.delete("/v1/cameos/{handle}", summary="Revoke your cameo for good and delete every draft others made with it")
def revoke(handle: str, request: Request, user: User) -> dict:
    server = state(request)
    record = _owned(_book(server), user, handle)
    book = _book(server, purge_drafts(server, user["id"]))
    try:
        result = book.revoke(record.handle, purge=True)
    except (CameoRevoked, UnknownCameo):  # revoked by a request beside this one
        raise not_found("cameo", handle) from None
    except SoraError as exc:  # a key the keystore would not destroy: the files are gone, the tombstone written
        raise ApiError(500, f"@{record.handle} was revoked, but {exc}", code="revoke_incomplete") from None
    purged = result["purged"]
    return {"handle": record.handle, "object": "cameo.deleted", "revoked": True,
            "drafts_removed": sum(p["deleted"] for p in purged),
            "drafts_not_removed": [p["id"] for p in purged if not p["deleted"]]}
