"""A small client of a `sora serve` (or any OpenAI-compatible) `/v1/videos` server, for the CLI's remote mode.

    client = RemoteClient("http://gpu-box:8000", api_key="sk-sora-…")
    video = client.create("a paper boat", size="832x480", seconds="4")          # JSON
    video = client.create("the boat drifts", file=Path("photo.jpg"))            # multipart input_reference
    video = client.poll(video["id"], progress=lambda v: print(v["progress"]))    # until completed / failed
    client.download(video["id"], Path("boat.mp4"))                               # temp name, then rename

Retries: 429 waits as Retry-After says; 5xx and network errors back off exponentially (a POST is retried
only when it cannot have reached the server, so a create never runs twice). A server that cannot be reached
is ServerUnreachable (exit 3); a refusal (4xx) is RemoteError with the server's message, PolicyRefusal for
moderation. The HTTP layer is an injectable httpx transport (tests use MockTransport or a real server).
"""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sora_cli.errors import PolicyRefusal, ServerUnreachable, SoraError, UsageError

TERMINAL = ("completed", "failed")
MAX_RETRY_AFTER = 120.0  # seconds: a longer Retry-After is capped, not obeyed blindly


class ServerFailed(SoraError):
    """The server answered 5xx or 429 after every retry: worth trying again later, or on another server."""


class RemoteError(UsageError):
    """The server refused the request (4xx); `code` and `param` are its error envelope's."""

    def __init__(self, message: str, status: int, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.code, self.param = status, code, param


class RemoteClient:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0, retries: int = 5,
                 backoff: float = 0.5, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        self.retries, self.backoff, self.sleep = retries, backoff, sleep

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def create(self, prompt: str, *, file: Path | None = None, field: str = "input_reference",
               path: str = "/v1/videos", **fields: Any) -> dict:
        """POST /v1/videos (or `path`: edits, extensions): JSON, or multipart with `file` as `field`.
        Fields left None are not sent."""
        body = {"prompt": prompt, **{k: v for k, v in fields.items() if v is not None}}
        if file is None:
            return self._json("POST", path, json=body)
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        return self._json("POST", path, data=data, files={field: (file.name, file.read_bytes(), kind)})

    def list(self, limit: int = 20, after: str | None = None) -> dict:
        params = {"limit": limit, **({"after": after} if after else {})}
        return self._json("GET", "/v1/videos", params=params)

    def post_json(self, path: str, body: dict) -> dict:
        return self._json("POST", path, json={k: v for k, v in body.items() if v is not None})

    def remix(self, video_id: str, prompt: str, **fields: Any) -> dict:
        body = {"prompt": prompt, **{k: v for k, v in fields.items() if v is not None}}
        return self._json("POST", f"/v1/videos/{video_id}/remix", json=body)

    def retrieve(self, video_id: str) -> tuple[dict, float]:
        """The video and how many seconds to wait before asking again (the `openai-poll-after-ms` header)."""
        response = self._send("GET", f"/v1/videos/{video_id}")
        after = response.headers.get("openai-poll-after-ms")
        return response.json(), int(after) / 1000 if after and after.isdigit() else 1.0

    def poll(self, video_id: str, progress: Callable[[dict], None] | None = None,
             timeout: float | None = None) -> dict:
        """Retrieve until the video is completed or failed (a failed one is returned, not raised)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            video, wait = self.retrieve(video_id)
            if progress is not None:
                progress(video)
            if video.get("status") in TERMINAL:
                return video
            if deadline is not None and time.monotonic() + wait > deadline:
                raise SoraError(f"{video_id} is still {video.get('status')} after {timeout:g} s")
            self.sleep(wait)

    def cancel(self, video_id: str) -> dict:
        return self._json("POST", f"/v1/videos/{video_id}/cancel")

    def call(self, method: str, path: str, **kwargs: Any) -> dict:
        """Any other JSON route (the feed's, the users'), with the same retries and errors."""
        return self._json(method, path, **kwargs)

    def download(self, video_id: str, path: Path, variant: str = "video", base: str = "/v1/videos") -> Path:
        """GET the content into a temp file beside `path`, renamed only when whole."""
        from sora_cli.media.atomic import atomic_path

        for attempt in range(self.retries + 1):
            try:
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    with self.http.stream("GET", f"{base}/{video_id}/content",
                                          params={"variant": variant}) as response:
                        if response.status_code >= 400:
                            response.read()
                            self._raise(response)
                        for chunk in response.iter_bytes(1 << 16):
                            fh.write(chunk)
                return path
            except httpx.TransportError as exc:  # a broken stream: start again from the beginning
                self._wait_or_give_up(attempt, exc)
        raise AssertionError("unreachable")

    # -- transport ----------------------------------------------------------------------------------------

    def _json(self, method: str, url: str, **kwargs: Any) -> dict:
        return self._send(method, url, **kwargs).json()

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        idempotent = method in ("GET", "HEAD", "DELETE")
        for attempt in range(self.retries + 1):
            try:
                response = self.http.request(method, url, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached the server: safe to retry
                self._wait_or_give_up(attempt, exc)
                continue
            except httpx.TransportError as exc:
                if not idempotent:
                    raise ServerUnreachable(f"lost the connection to {self.base_url} during {method} {url}: "
                                            f"{exc or type(exc).__name__}; check the server's list before retrying"
                                            ) from None
                self._wait_or_give_up(attempt, exc)
                continue
            retryable = response.status_code == 429 or response.status_code == 503 or (
                idempotent and response.status_code >= 500)
            if retryable and attempt < self.retries:
                self.sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            if response.status_code >= 400:
                self._raise(response)
            return response
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        try:
            if retry_after is not None:
                return min(MAX_RETRY_AFTER, max(0.0, float(retry_after)))
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
        return self.backoff * 2**attempt

    def _wait_or_give_up(self, attempt: int, exc: Exception) -> None:
        if attempt >= self.retries:
            raise ServerUnreachable(f"cannot reach the server at {self.base_url}: {exc or type(exc).__name__}"
                                    ) from None
        self.sleep(self._delay(attempt, None))

    def _raise(self, response: httpx.Response) -> None:
        try:
            error = response.json().get("error") or {}
        except (ValueError, AttributeError):
            error = {}
        message = error.get("message") or f"HTTP {response.status_code} {response.reason_phrase}"
        code = error.get("code")
        if code == "moderation_blocked":
            raise PolicyRefusal(message)
        if response.status_code >= 500 or response.status_code == 429:
            raise ServerFailed(f"the server failed ({response.status_code}): {message}")
        raise RemoteError(message, response.status_code, code, error.get("param"))
