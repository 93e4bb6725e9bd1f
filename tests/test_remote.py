"""The remote client: against a real server for the happy path, a MockTransport for failures."""

from __future__ import annotations

import io
import os
import socket

import httpx
import pytest
from PIL import Image

from sora_cli.engines.remote import RemoteClient, RemoteError
from sora_cli.errors import ServerUnreachable
from sora_cli.server.running import serve_local

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FAST = {"size": "128x128", "seconds": "1", "fps": 8, "steps": 2}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "server-cache"  # shared with the other server tests
    with serve_local(tmp_path_factory.mktemp("remote"), cache=cache, poll_after_ms=100) as server:
        yield server


def test_create_poll_download_and_cancel(served, tmp_path):
    from sora_cli.provenance.check import check_files

    photo = tmp_path / "photo.png"
    Image.linear_gradient("L").convert("RGB").resize((96, 64)).save(photo)
    with RemoteClient(served.url, served.keys["alice"]) as client:
        video = client.create("a kite over the sea", **FAST)
        seen = []
        done = client.poll(video["id"], progress=lambda v: seen.append(v["progress"]))
        assert done["status"] == "completed" and seen[-1] == 100 and seen == sorted(seen)
        out = tmp_path / "out" / "kite.mp4"
        out.parent.mkdir()
        assert client.download(done["id"], out) == out
        assert [p.name for p in out.parent.iterdir()] == ["kite.mp4"]  # no temp file left beside it
        assert check_files([out], anchors_pem=None, library=None)[0].status in ("trusted", "intact_untrusted")
        thumb = client.download(done["id"], tmp_path / "kite.jpg", variant="thumbnail")
        assert Image.open(io.BytesIO(thumb.read_bytes())).format == "JPEG"

        animated = client.create("the gradient moves", file=photo, **FAST)  # multipart input_reference
        assert animated["model"] == "tiny-i2v"
        cancelled = client.cancel(animated["id"])
        assert cancelled["id"] == animated["id"]
        assert client.poll(animated["id"])["error"]["code"] == "cancelled"

        with pytest.raises(RemoteError) as refused:
            client.create("a harbour at noon", size="130x128")
        assert refused.value.status == 400 and refused.value.param == "size" and "16" in str(refused.value)
        with pytest.raises(RemoteError) as missing:
            client.download("video_nothere", tmp_path / "nothing.mp4")
        assert missing.value.status == 404 and not (tmp_path / "nothing.mp4").exists()


def test_a_server_that_is_not_there_is_server_unreachable():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    waits: list[float] = []
    with RemoteClient(f"http://127.0.0.1:{port}", "k", retries=2, sleep=waits.append) as client:
        with pytest.raises(ServerUnreachable):
            client.create("a harbour at noon")
    assert waits == [0.5, 1.0]  # backed off twice, then gave up


def _scripted(*answers):
    """A transport answering from a script: a status (with headers) or an exception, in order."""
    calls: list[httpx.Request] = []
    script = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        answer = script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        body = {"id": "video_1", "status": "completed", "progress": 100} if status == 200 else {
            "error": {"message": "busy", "type": "x", "param": None, "code": None}}
        return httpx.Response(status, json=body, headers=headers)

    return httpx.MockTransport(handler), calls


def test_429_waits_as_retry_after_says_and_5xx_backs_off():
    transport, calls = _scripted((429, {"retry-after": "7"}), 503, 200)
    waits: list[float] = []
    with RemoteClient("http://sora.test", "k", transport=transport, sleep=waits.append) as client:
        assert client.create("a harbour at noon")["id"] == "video_1"
    assert waits == [7.0, 1.0] and len(calls) == 3
    transport, calls = _scripted(500, httpx.ReadError("reset"), 200)
    waits = []
    with RemoteClient("http://sora.test", "k", transport=transport, sleep=waits.append) as client:
        assert client.retrieve("video_1")[0]["status"] == "completed"  # a GET is retried on anything
    assert len(calls) == 3 and waits == [0.5, 1.0]


def test_a_create_is_never_sent_twice():
    transport, calls = _scripted(httpx.ReadError("reset after sending"), 200)
    with RemoteClient("http://sora.test", "k", transport=transport, sleep=lambda s: None) as client:
        with pytest.raises(ServerUnreachable, match="check the server's list"):
            client.create("a harbour at noon")
    assert len(calls) == 1
    transport, calls = _scripted(500, 200)
    with RemoteClient("http://sora.test", "k", transport=transport, sleep=lambda s: None) as client:
        with pytest.raises(Exception, match="server failed"):
            client.create("a harbour at noon")  # a 500 may have queued it: not retried
    assert len(calls) == 1
