"""The routes around videos: files (for `input_reference.file_id`), characters, webhook endpoints, admin."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from sora_cli.errors import UsageError
from sora_cli.server import auth
from sora_cli.server.deps import Admin, User, read_body, state, upload_of
from sora_cli.server.schemas import ApiError, not_found
from sora_cli.server.store import new_id
from sora_cli.server.webhooks import BlockedAddress, check_url, new_secret

router = APIRouter()
_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "properties": {"file": {"type": "string", "format": "binary"}, "purpose": {"type": "string"}},
    "required": ["file"]}}}}}
_CHARACTER = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "properties": {"video": {"type": "string", "format": "binary"}, "name": {"type": "string"}},
    "required": ["video", "name"]}}}}}


async def _store_file(request: Request, user: dict, field: str, purpose: str, allowed: tuple[str, ...],
                      name: str) -> dict:
    from sora_cli.media.encode import write_bytes

    server = state(request)
    fields, files = await read_body(request)
    if field not in files:
        raise ApiError(400, f"{field} is required (a multipart upload)", code="missing_required_parameter", param=field)
    if purpose == "character" and not str(fields.get("name") or "").strip():
        raise ApiError(400, "name is required", code="missing_required_parameter", param="name")
    upload = await upload_of(files[field], server.settings, field, allowed)
    file_id = new_id("file-" if purpose != "character" else "char_")
    path = server.settings.uploads_dir / f"{file_id}.{upload.content_type.split('/')[-1]}"
    row = {"id": file_id, "user_id": user["id"], "purpose": purpose,
           "name": str(fields.get("name") or name or files[field].filename or file_id)[:200],
           "content_type": upload.content_type, "bytes": len(upload.data or b""), "path": str(path),
           "created_at": int(time.time())}
    await run_in_threadpool(write_bytes, upload.data or b"", path)
    server.store.add_file(row)
    return row


def _file_object(row: dict) -> dict:
    return {"id": row["id"], "object": "file", "bytes": row["bytes"], "created_at": row["created_at"],
            "filename": row["name"], "purpose": row["purpose"], "status": "processed"}


@router.post("/v1/files", openapi_extra=_FORM, tags=["files"], summary="Upload an image for input_reference.file_id")
async def create_file(request: Request, user: User) -> dict:
    server = state(request)
    return _file_object(await _store_file(request, user, "file", "vision", server.settings.image_types, ""))


@router.get("/v1/files/{file_id}", tags=["files"], summary="Retrieve a file")
def retrieve_file(file_id: str, request: Request, user: User) -> dict:
    found = state(request).store.file(file_id, user["id"], "vision")
    if found is None:
        raise not_found("file", file_id)
    return _file_object(found)


@router.delete("/v1/files/{file_id}", tags=["files"], summary="Delete a file")
def delete_file(file_id: str, request: Request, user: User) -> dict:
    from pathlib import Path

    server = state(request)
    found = server.store.file(file_id, user["id"], "vision")
    if found is None:
        raise not_found("file", file_id)
    server.store.delete_file(file_id)
    Path(found["path"]).unlink(missing_ok=True)
    return {"id": file_id, "object": "file", "deleted": True}


@router.post("/v1/videos/characters", openapi_extra=_CHARACTER, tags=["videos"],
             summary="Store a character (a pet, an object, a made-up figure) from a video; @name uses it")
async def create_character(request: Request, user: User) -> dict:
    from sora_cli.server.characters import CharacterRefused, prepare_character

    server = state(request)
    row = await _store_file(request, user, "video", "character", server.settings.video_types, "character")
    try:
        await run_in_threadpool(prepare_character, Path(row["path"]))
    except CharacterRefused as exc:
        server.store.delete_file(row["id"])
        raise ApiError(400, str(exc), code=exc.code, param="video") from None
    return {"id": row["id"], "object": "character", "created_at": row["created_at"], "name": row["name"]}


@router.get("/v1/videos/characters/{character_id}", tags=["videos"], summary="Retrieve a character")
def retrieve_character(character_id: str, request: Request, user: User) -> dict:
    found = state(request).store.file(character_id, user["id"], "character")
    if found is None:
        raise not_found("character", character_id)
    return {"id": found["id"], "object": "character", "created_at": found["created_at"], "name": found["name"]}


# -- webhook endpoints (the paths and fields of OpenAI's `client.webhooks`) --------------------------------

class WebhookBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(pattern=r"^https?://", max_length=2000)
    event_types: list[Literal["video.completed", "video.failed"]] = Field(min_length=1)


def _endpoint(row: dict, secret: bool = False) -> dict:
    out = {"id": row["id"], "object": "webhook_endpoint", "name": row["name"], "url": row["url"],
           "event_types": json.loads(row["event_types"]), "created_at": row["created_at"],
           "updated_at": row["created_at"], "signing_secret_hint": row["secret"][:10] + "…"}
    return {**out, "signing_secret": row["secret"]} if secret else out


@router.post("/v1/webhook_endpoints", tags=["webhooks"], summary="Register a webhook (its secret is shown once)")
def create_webhook(body: WebhookBody, request: Request, user: User) -> dict:
    try:
        check_url(body.url, state(request).settings.webhook_allow_private)
    except BlockedAddress as exc:
        raise ApiError(400, str(exc), code="invalid_url", param="url") from None
    row = {"id": new_id("we_"), "user_id": user["id"], "name": body.name, "url": body.url, "secret": new_secret(),
           "event_types": json.dumps(sorted(set(body.event_types))), "created_at": int(time.time())}
    state(request).store.add_webhook(row)
    return _endpoint(row, secret=True)


@router.get("/v1/webhook_endpoints", tags=["webhooks"], summary="List your webhooks")
def list_webhooks(request: Request, user: User) -> dict:
    data = [_endpoint(r) for r in state(request).store.webhooks(user["id"])]
    return {"object": "list", "data": data, "has_more": False}


@router.get("/v1/webhook_endpoints/{webhook_id}", tags=["webhooks"], summary="Retrieve a webhook")
def retrieve_webhook(webhook_id: str, request: Request, user: User) -> dict:
    found = state(request).store.webhook(webhook_id, user["id"])
    if found is None:
        raise not_found("webhook endpoint", webhook_id)
    return _endpoint(found)


@router.delete("/v1/webhook_endpoints/{webhook_id}", tags=["webhooks"], summary="Delete a webhook")
def delete_webhook(webhook_id: str, request: Request, user: User) -> dict:
    server = state(request)
    if server.store.webhook(webhook_id, user["id"]) is None:
        raise not_found("webhook endpoint", webhook_id)
    server.store.delete_webhook(webhook_id)
    return {"id": webhook_id, "object": "webhook_endpoint.deleted", "deleted": True}


# -- admin: users and keys ---------------------------------------------------------------------------------

class UserBody(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["user", "admin"] = "user"


def _user(row: dict) -> dict:
    return {"id": row["id"], "object": "user", "name": row["name"], "role": row["role"],
            "disabled": bool(row["disabled"]), "created_at": row["created_at"]}


@router.get("/v1/admin/users", tags=["admin"], summary="List users")
def list_users(request: Request, admin: Admin) -> dict:
    return {"object": "list", "data": [_user(u) for u in state(request).store.users()], "has_more": False}


@router.post("/v1/admin/users", tags=["admin"], summary="Add a user")
def add_user(body: UserBody, request: Request, admin: Admin) -> dict:
    try:
        return _user(auth.add_user(state(request).store, body.name, body.role))
    except UsageError as exc:
        raise ApiError(409 if "exists" in str(exc) else 400, str(exc), code="invalid_value", param="name") from None


def _set_disabled(request: Request, user_id: str, disabled: bool) -> dict:
    store = state(request).store
    found = store.user(user_id)
    if found is None:
        raise not_found("user", user_id)
    store.set_disabled(found["id"], disabled)
    return _user(store.user(found["id"]) or found)


@router.post("/v1/admin/users/{user_id}/disable", tags=["admin"], summary="Disable a user (their keys stop working)")
def disable_user(user_id: str, request: Request, admin: Admin) -> dict:
    return _set_disabled(request, user_id, True)


@router.post("/v1/admin/users/{user_id}/enable", tags=["admin"], summary="Enable a user again")
def enable_user(user_id: str, request: Request, admin: Admin) -> dict:
    return _set_disabled(request, user_id, False)


class MinorBody(BaseModel):
    minor: bool
    daily_feed_limit: int | None = Field(default=None, ge=0, le=10000)  # None: 50 for a minor
    personalised: bool = True  # the guardian's setting: False ignores steering and saved steers


@router.post("/v1/admin/users/{user_id}/minor", tags=["admin"],
             summary="Mark a user as a minor: a daily feed cap, the guardian's personalisation setting")
def set_minor(user_id: str, body: MinorBody, request: Request, admin: Admin) -> dict:
    from sora_cli.server.feed import MINOR_DAILY_LIMIT

    store = state(request).store
    found = store.user(user_id)
    if found is None:
        raise not_found("user", user_id)
    limit = body.daily_feed_limit if body.daily_feed_limit is not None else MINOR_DAILY_LIMIT if body.minor else None
    store.set_flags(found["id"], body.minor, limit, body.personalised)
    return {**_user(found), **store.flags(found["id"])}


@router.post("/v1/admin/users/{user_id}/keys", tags=["admin"], summary="Create an API key (shown once)")
def create_key(user_id: str, request: Request, admin: Admin) -> dict:
    store = state(request).store
    if store.user(user_id) is None:
        raise not_found("user", user_id)
    row, secret = auth.create_key(store, user_id)
    return {"id": row["id"], "object": "api_key", "user_id": row["user_id"], "key": secret, "hint": row["hint"],
            "created_at": row["created_at"]}


@router.delete("/v1/admin/keys/{key_id}", tags=["admin"], summary="Revoke an API key")
def revoke_key(key_id: str, request: Request, admin: Admin) -> dict:
    if not state(request).store.revoke_key(key_id):
        raise not_found("active key", key_id)
    return {"id": key_id, "object": "api_key.revoked", "revoked": True}
