"""`/v1/videos`: OpenAI's routes and fields, plus cancel. A user sees and touches only their own videos:
another user's id answers 404, exactly like an id that does not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from sora_cli.server.admission import Upload
from sora_cli.server.deps import ServerState, User, read_body, sniff, state, upload_of
from sora_cli.server.schemas import ApiError, data_url, not_found, parse_params, video_object, video_reference
from sora_cli.server.worker import spritesheet_path, thumbnail_path

router = APIRouter(prefix="/v1/videos", tags=["videos"])

OURS = ("seed", "negative_prompt", "steps", "fps", "guidance")  # beyond OpenAI's fields
CREATE_FIELDS = ("prompt", "model", "seconds", "size", *OURS)
REMIX_FIELDS = ("prompt", "model", "seconds", "size", "strength", *OURS)
EXTEND_FIELDS = ("prompt", "model", "seconds", *OURS)


def _schema(required: tuple[str, ...], **extra: dict) -> dict:
    """OpenAPI for a body sent as JSON or as a form (the SDK sends multipart)."""
    text, number = {"type": "string"}, {"type": "number"}
    props = {"prompt": {**text, "maxLength": 10000}, "model": text, "seconds": {**text, "example": "4"},
             "size": {**text, "pattern": r"^\d{1,5}x\d{1,5}$", "example": "1280x720"},
             "seed": {"type": "integer", "minimum": 0}, "negative_prompt": text,
             "steps": {"type": "integer", "minimum": 1, "maximum": 100},
             "fps": {"type": "integer", "minimum": 1, "maximum": 60},
             "guidance": {**number, "minimum": 0, "maximum": 50}, **extra}
    schema = {"type": "object", "properties": props, "required": list(required)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema},
                                                           "multipart/form-data": {"schema": schema}}}}


_REF = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
_IMAGE = {"oneOf": [{"type": "string", "format": "binary"},
                    {"type": "object", "properties": {"file_id": {"type": "string"}, "image_url": {"type": "string"}}}]}
_VIDEO = {"oneOf": [{"type": "string", "format": "binary"}, _REF]}


def respond(server: ServerState, job: dict) -> JSONResponse:
    """The Video object; an unfinished one says when to poll again, as OpenAI's `openai-poll-after-ms` does."""
    headers = {}
    if job["status"] in ("queued", "in_progress"):
        headers["openai-poll-after-ms"] = str(server.settings.poll_after_ms)
    return JSONResponse(video_object(job), headers=headers)


def own(server: ServerState, user: dict, video_id: str) -> dict:
    job = server.store.job(video_id, user["id"])
    if job is None:
        raise not_found("video", video_id)
    return job


async def _admit(server: ServerState, user: dict, kind: str, params: Any, **kwargs: Any) -> JSONResponse:
    job = await run_in_threadpool(server.admission.admit, user, kind, params, **kwargs)
    server.pool.wake()
    return respond(server, job)


def _no_files(files: dict, allowed: tuple[str, ...] = ()) -> None:
    for name in files:
        if name not in allowed:
            raise ApiError(400, f"unexpected file field {name!r}", code="unknown_parameter", param=name)


async def _reference(server: ServerState, user: dict, value: Any) -> Upload:
    """`input_reference` as JSON: `{"file_id": …}` (a Files API upload) or `{"image_url": "data:…"}`."""
    settings = server.settings
    if isinstance(value, str) and value.startswith("data:"):
        value = {"image_url": value}
    if not isinstance(value, dict) or len([k for k in ("file_id", "image_url") if value.get(k)]) != 1:
        raise ApiError(400, "input_reference must be an upload, {\"file_id\": …} or {\"image_url\": \"data:…\"}",
                       code="invalid_value", param="input_reference")
    if value.get("file_id"):
        found = server.store.file(str(value["file_id"]), user["id"])
        if found is None:
            raise not_found("file", str(value["file_id"]))
        return Upload(content_type=found["content_type"], path=Path(found["path"]))
    kind, data = data_url(str(value["image_url"]), "input_reference")
    if len(data) > settings.max_upload_bytes:
        raise ApiError(413, "input_reference is too large", code="file_too_large", param="input_reference")
    kind = sniff(data, kind)
    if kind not in settings.image_types:
        raise ApiError(415, f"input_reference is {kind}; accepted: {', '.join(settings.image_types)}",
                       code="unsupported_media_type", param="input_reference")
    return Upload(content_type=kind, data=data)


@router.post("", openapi_extra=_schema(("prompt",), input_reference=_IMAGE), summary="Create a video")
async def create_video(request: Request, user: User) -> JSONResponse:
    server = state(request)
    settings = server.settings
    fields, files = await read_body(request)
    _no_files(files, ("input_reference",))
    upload = None
    if "input_reference" in files:
        upload = await upload_of(files["input_reference"], settings, "input_reference",
                                 settings.image_types + settings.video_types)
        if upload.content_type in settings.video_types:
            raise ApiError(400, "input_reference takes an image (the first frame); to remake a video use "
                           "POST /v1/videos/edits", code="invalid_value", param="input_reference")
    elif fields.get("input_reference") is not None:
        upload = await _reference(server, user, fields["input_reference"])
    fields.pop("input_reference", None)
    params = parse_params(fields, settings, allowed=CREATE_FIELDS)
    kind = "animate-image" if upload is not None else "generate"
    return await _admit(server, user, kind, params, upload=upload, upload_param="input_reference")


@router.get("", summary="List your videos")
async def list_videos(request: Request, user: User, after: str | None = None,
                limit: Annotated[int, Query(ge=1, le=100)] = 20, order: Literal["asc", "desc"] = "desc") -> dict:
    page = state(request).store.jobs(user["id"], after=after, limit=limit, order=order)
    if page is None:
        raise ApiError(400, f"after: no video {after!r}", code="invalid_value", param="after")
    rows, more = page
    data = [video_object(r) for r in rows]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": more}


@router.get("/{video_id}", summary="Retrieve a video")
async def retrieve_video(video_id: str, request: Request, user: User) -> JSONResponse:
    # what pollers hit: inline (two indexed SQLite reads), not through the thread pool
    server = state(request)
    return respond(server, own(server, user, video_id))


@router.delete("/{video_id}", summary="Delete a video and its files")
def delete_video(video_id: str, request: Request, user: User) -> dict:
    server = state(request)
    job = own(server, user, video_id)
    if job["status"] == "queued":
        server.pool.cancel(video_id)
    if not server.store.delete_job(video_id):
        raise ApiError(409, f"video {video_id} is being generated: cancel it first", code="invalid_state")
    for path in (job["output"], job["input_path"], spritesheet_path(server.settings, video_id),
                 thumbnail_path(server.settings, job) if job["library_id"] else None):
        if path:
            Path(path).unlink(missing_ok=True)
    if job["library_id"]:
        try:
            server.studio.library.delete(job["library_id"])
        except Exception:  # the library row may be gone already; the job is deleted either way
            pass
    return {"id": video_id, "object": "video.deleted", "deleted": True}


@router.get("/{video_id}/content", summary="Download the video, its thumbnail or its spritesheet",
            response_class=FileResponse)
def video_content(video_id: str, request: Request, user: User,
                  variant: Literal["video", "thumbnail", "spritesheet"] = "video") -> FileResponse:
    server = state(request)
    job = own(server, user, video_id)
    if job["status"] != "completed":
        raise ApiError(409, f"video {video_id} is {video_object(job)['status']}; content is ready when it is "
                       "completed", code="video_not_ready")
    return content_response(server, job, variant)


def content_response(server: ServerState, job: dict, variant: str) -> FileResponse:
    """A completed job's video, thumbnail or spritesheet; 404 for a file that is not the one recorded."""
    video_id = job["id"]
    if variant == "video":
        path, media = Path(job["output"] or ""), "video/mp4"
        whole = path.is_file() and path.stat().st_size == job["bytes"]
    else:
        path = thumbnail_path(server.settings, job) if variant == "thumbnail" else spritesheet_path(server.settings,
                                                                                                    video_id)
        media, whole = "image/jpeg", path.is_file()
    if not whole:  # never serve a file that is not the one recorded
        raise ApiError(404, f"the {variant} of {video_id} is missing", code="not_found")
    name = f"{video_id}.mp4" if variant == "video" else f"{video_id}-{variant}.jpg"
    return FileResponse(path, media_type=media, filename=name)


@router.post("/{video_id}/cancel", summary="Cancel a queued or running video (not in OpenAI's API)")
def cancel_video(video_id: str, request: Request, user: User) -> JSONResponse:
    server = state(request)
    job = own(server, user, video_id)
    if job["status"] not in ("queued", "in_progress"):
        raise ApiError(409, f"video {video_id} is {video_object(job)['status']}: nothing to cancel",
                       code="invalid_state")
    server.pool.cancel(video_id)
    return respond(server, own(server, user, video_id))


@router.post("/{video_id}/remix", openapi_extra=_schema(("prompt",), strength={"type": "number"}),
             summary="Remix a completed video with a new prompt")
async def remix_video(video_id: str, request: Request, user: User) -> JSONResponse:
    server = state(request)
    fields, files = await read_body(request)
    _no_files(files)
    params = parse_params(fields, server.settings, allowed=REMIX_FIELDS)
    parent = await run_in_threadpool(server.admission.parent, user, video_id)
    return await _admit(server, user, "remix", params, parent=parent)


async def _from_video(request: Request, user: dict, kind: str, allowed: tuple[str, ...]) -> JSONResponse:
    """edits and extensions: `video` is an upload or {"id": …} of the user's own completed video."""
    server = state(request)
    fields, files = await read_body(request)
    _no_files(files, ("video",))
    reference = fields.pop("video", None)
    params = parse_params(fields, server.settings, allowed=allowed)
    if kind == "extend" and params.seconds is None:
        raise ApiError(400, "seconds is required: how long the new part is", code="missing_required_parameter",
                       param="seconds")
    if "video" in files:
        upload = await upload_of(files["video"], server.settings, "video", server.settings.video_types)
        return await _admit(server, user, kind, params, upload=upload, upload_param="video")
    if reference is None:
        raise ApiError(400, "video is required: an upload or {\"id\": \"video_…\"}", code="missing_required_parameter",
                       param="video")
    parent = await run_in_threadpool(server.admission.parent, user, video_reference(reference))
    return await _admit(server, user, kind, params, parent=parent)


@router.post("/edits", openapi_extra=_schema(("prompt", "video"), video=_VIDEO, strength={"type": "number"}),
             summary="Edit a video with a prompt (a remix)")
async def edit_video(request: Request, user: User) -> JSONResponse:
    return await _from_video(request, user, "remix", REMIX_FIELDS)


@router.post("/extensions", openapi_extra=_schema(("prompt", "seconds", "video"), video=_VIDEO),
             summary="Continue a video from its last frame")
async def extend_video(request: Request, user: User) -> JSONResponse:
    return await _from_video(request, user, "extend", EXTEND_FIELDS)
