"""What every route gets: the server's state, the request's user (401 without a valid key), request bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import UploadFile

from sora_cli.config import Config
from sora_cli.produce import Studio
from sora_cli.server.admission import Admission, Upload
from sora_cli.server.auth import user_for
from sora_cli.server.pool import WorkerPool
from sora_cli.server.schemas import ApiError
from sora_cli.server.settings import ServerSettings
from sora_cli.server.store import Store
from sora_cli.server.webhooks import Deliverer

_bearer = HTTPBearer(auto_error=False, description="An API key made by `sora server key create USER`.")


@dataclass
class ServerState:
    settings: ServerSettings
    config: Config
    store: Store
    studio: Studio  # for checking requests (prepare); the workers own the engines
    admission: Admission
    pool: WorkerPool
    deliverer: Deliverer


def state(request: Request) -> ServerState:
    return request.app.state.server


async def current_user(request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> dict:
    # async on purpose: one indexed SQLite read (~0.4 ms) costs less inline than a hop to the thread pool
    header = request.headers.get("authorization")
    user = user_for(state(request).store, header) if credentials is not None else None
    if user is None:
        message = ("missing API key: send `Authorization: Bearer sk-sora-…`" if not header
                   else "invalid, revoked or disabled API key")
        raise ApiError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
    return user


User = Annotated[dict, Depends(current_user)]


async def admin_user(user: User) -> dict:
    if user["role"] != "admin":
        raise ApiError(403, "this needs an admin key", code="forbidden")
    return user


Admin = Annotated[dict, Depends(admin_user)]


async def read_body(request: Request) -> tuple[dict[str, Any], dict[str, UploadFile]]:
    """A JSON object or a multipart / urlencoded form -> (fields, files); any other body is a 415."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        body = await request.body()
        try:
            data = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "the body is not valid JSON", code="invalid_json") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the body must be a JSON object", code="invalid_json")
        return data, {}
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_files=4, max_fields=64)
        except ApiError:  # the body limit (413) fired while the form was read
            raise
        except Exception as exc:  # starlette's MultiPartException and parser errors
            raise ApiError(400, f"the form cannot be read: {exc}", code="invalid_form") from None
        fields: dict[str, Any] = {}
        files: dict[str, UploadFile] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = value
            elif "[" in key and key.endswith("]"):  # the SDK's form encoding of objects: video[id]=…
                name, _, inner = key[:-1].partition("[")
                nested = fields.setdefault(name, {})
                if isinstance(nested, dict):
                    nested[inner] = value
            else:
                fields[key] = value
        return fields, files
    if not kind and not await request.body():
        return {}, {}
    raise ApiError(415, f"unsupported content type {kind or '(none)'!r}: send application/json or multipart/form-data",
                   code="unsupported_media_type")


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))


def sniff(data: bytes, declared: str | None) -> str:
    """The declared type unless it says nothing (octet-stream); then what the bytes look like."""
    declared = (declared or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream":
        return declared
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/quicktime" if data[8:10] == b"qt" else "video/mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm"
    return declared or "application/octet-stream"


async def upload_of(file: UploadFile, settings: ServerSettings, param: str, allowed: tuple[str, ...]) -> Upload:
    """An uploaded part, size- and type-checked (413, 415) before anything is written."""
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise ApiError(413, f"{param} is larger than {settings.max_upload_bytes // (1 << 20)} MB",
                       code="file_too_large", param=param)
    if not data:
        raise ApiError(400, f"{param} is empty", code="invalid_input", param=param)
    kind = sniff(data, file.content_type)
    if kind not in allowed:
        raise ApiError(415, f"{param} is {kind}; accepted: {', '.join(allowed)}", code="unsupported_media_type",
                       param=param)
    return Upload(content_type=kind, data=data)
