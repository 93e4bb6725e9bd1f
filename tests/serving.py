"""Helpers for tests that talk to a real `sora serve` on loopback (started with serve_local)."""

from __future__ import annotations

import time

import httpx

FAST = {"size": "128x128", "seconds": "1", "fps": 8, "steps": 2}  # 9 frames on the tiny models


def client(server, who: str = "alice", timeout: float = 120) -> httpx.Client:
    """An HTTP client with `who`'s API key."""
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.keys[who]}"}, timeout=timeout)


def wait(api: httpx.Client, video_id: str, timeout: float = 240, seen: list | None = None) -> dict:
    """Poll a video until it is completed or failed; `seen` collects the progress values."""
    deadline = time.monotonic() + timeout
    video: dict = {}
    while time.monotonic() < deadline:
        video = api.get(f"/v1/videos/{video_id}").json()
        if seen is not None:
            seen.append(video["progress"])
        if video["status"] in ("completed", "failed"):
            return video
        time.sleep(0.1)
    raise AssertionError(f"{video_id} did not finish: {video}")


def error_of(response: httpx.Response, status: int) -> dict:
    """The error of a refused request, after checking its status and OpenAI's envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]
