"""The wire format: OpenAI's error envelope, request fields and their limits, and the Video object.

Every rejection is an ApiError, answered as `{"error": {"message", "type", "param", "code"}}` with a 4xx;
parsing is by hand (not pydantic) so that JSON bodies and multipart forms (where every value is a string)
meet the same checks and the same messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sora_cli.server.settings import ServerSettings

_TYPES = {401: "invalid_request_error", 403: "permission_error", 429: "rate_limit_error", 500: "server_error"}
_SIZE = re.compile(r"^(\d{1,5})x(\d{1,5})$")
# OpenAI's own model names mean "the server's default model", so unchanged clients work
OPENAI_MODELS = re.compile(r"^sora-2(-pro)?(-\d{4}-\d{2}-\d{2})?$")


class ApiError(Exception):
    """A request the server answers with a 4xx (or, never on purpose, a 5xx) and the error envelope."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return envelope(self.status, self.message, code=self.code, param=self.param)


def envelope(status: int, message: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"no {what} {ident!r}", code="not_found", param=None)


@dataclass(frozen=True)
class Params:
    """The generation fields of a create, remix, edit or extension (None: not given)."""

    prompt: str | None = None
    model: str | None = None
    seconds: float | None = None
    size: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    fps: int | None = None
    guidance: float | None = None
    strength: float | None = None


def parse_params(data: Mapping[str, Any], settings: ServerSettings, *, allowed: tuple[str, ...],
                 prompt_required: bool = True) -> Params:
    """Check every field against the server's limits; unknown fields are a 400, as in OpenAI's API."""
    for name in data:
        if name not in allowed:
            raise ApiError(400, f"unknown parameter: {name!r}", code="unknown_parameter", param=name)
    prompt = _text(data, "prompt", settings.max_prompt_chars)
    if prompt_required and (prompt is None or not prompt.strip()):
        raise ApiError(400, "prompt is required and may not be empty", code="missing_required_parameter",
                       param="prompt")
    model = _text(data, "model", 200)
    if model is not None and OPENAI_MODELS.match(model):
        model = None
    return Params(
        prompt=prompt, model=model or None, seconds=_seconds(data, settings), size=_size(data, settings),
        seed=_number(data, "seed", int, 0, 2**63 - 1), negative_prompt=_text(data, "negative_prompt",
                                                                             settings.max_prompt_chars),
        steps=_number(data, "steps", int, 1, settings.max_steps), fps=_number(data, "fps", int, 1, 60),
        guidance=_number(data, "guidance", float, 0, 50), strength=_number(data, "strength", float, 0.01, 1),
    )


def _text(data: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string", code="invalid_type", param=name)
    if len(value) > limit:
        raise ApiError(400, f"{name} is {len(value)} characters; the limit is {limit}", code="string_above_max_length",
                       param=name)
    return value


def _number(data: Mapping[str, Any], name: str, kind: type, low: float, high: float) -> Any:
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError
        number = kind(value) if kind is float else int(str(value).strip())
        if kind is float and not math.isfinite(number):
            raise ValueError
    except (ValueError, OverflowError):
        raise ApiError(400, f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}",
                       code="invalid_type", param=name) from None
    if not low <= number <= high:
        raise ApiError(400, f"{name} must be between {low:g} and {high:g}, got {value}", code="invalid_value",
                       param=name)
    return number


def _seconds(data: Mapping[str, Any], settings: ServerSettings) -> float | None:
    value = data.get("seconds")
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= settings.max_seconds):
        raise ApiError(400, f"seconds must be a number of seconds above 0 and at most {settings.max_seconds:g}, "
                       f"as a string such as \"4\"; got {value!r}", code="invalid_value", param="seconds")
    return seconds


def _size(data: Mapping[str, Any], settings: ServerSettings) -> str | None:
    value = data.get("size")
    if value is None:
        return None
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise ApiError(400, f"size must be WIDTHxHEIGHT, for example 1280x720; got {value!r}", code="invalid_value",
                       param="size")
    width, height = int(match[1]), int(match[2])
    if not (16 <= width <= settings.max_side and 16 <= height <= settings.max_side):
        raise ApiError(400, f"size {value} is outside 16..{settings.max_side} pixels a side", code="invalid_value",
                       param="size")
    return value


def video_reference(value: Any, param: str = "video") -> str:
    """`{"id": "video_…"}` (JSON, or a JSON string in a form) -> the id."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.lstrip().startswith("{") else {"id": value}
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str) or not value["id"]:
        raise ApiError(400, f"{param} must be an upload or {{\"id\": \"video_…\"}} naming a completed video",
                       code="invalid_value", param=param)
    return value["id"]


def data_url(value: str, param: str) -> tuple[str, bytes]:
    """`data:image/png;base64,…` -> (content type, bytes); this server fetches no other URLs."""
    match = re.match(r"^data:([\w.+-]+/[\w.+-]+)(;[^,]*)?,(.*)$", value, re.S)
    if not match:
        raise ApiError(400, f"{param}: only data URLs (data:image/png;base64,…) are accepted; this server does not "
                       "fetch URLs", code="invalid_value", param=param)
    if ";base64" not in (match[2] or ""):
        raise ApiError(400, f"{param}: the data URL must be base64", code="invalid_value", param=param)
    try:
        return match[1].lower(), base64.b64decode(match[3], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{param}: the data URL is not valid base64", code="invalid_value", param=param) from None


def video_object(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job row as OpenAI's Video object plus our fields. `cancelled` is `failed` with error code cancelled:
    the SDK's status type has no other word for it."""
    status = job["status"]
    error = json.loads(job["error"]) if job["error"] else None
    if status == "cancelled":
        status = "failed"
        error = error or {"code": "cancelled", "message": "cancelled"}
    return {
        "id": job["id"], "object": "video", "model": job["model"], "status": status, "progress": job["progress"],
        "created_at": job["created_at"], "completed_at": job["completed_at"], "expires_at": None, "error": error,
        "prompt": job["prompt"], "remixed_from_video_id": job["remixed_from"], "seconds": job["seconds"],
        "size": job["size"], **json.loads(job["record"] or "{}"),
    }
