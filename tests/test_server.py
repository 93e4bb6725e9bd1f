"""`sora serve` end to end: a real uvicorn on loopback, real SQLite, the tiny models, real ffmpeg and C2PA."""

from __future__ import annotations

import base64
import io
import json
import os
import sqlite3
import threading
import time
from contextlib import closing
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from sora_cli.server.running import serve_local
from sora_cli.server.settings import MB
from tests.cameo_clips import picture_mp4
from tests.serving import FAST, client, error_of, wait

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CALM = "a harbour at noon"  # a prompt no moderation layer minds


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """Built tiny models and the moderation model's vectors, shared by this session's servers (a worker's
    warm-up is then seconds, not tens of seconds)."""
    return tmp_path_factory.getbasetemp() / "server-cache"


@pytest.fixture(scope="module")
def server(tmp_path_factory, cache):
    root = tmp_path_factory.mktemp("server")
    users = {"alice": "admin", "bob": "user", "carol": "user", "dave": "user"}
    with serve_local(root, users, cache, poll_after_ms=100, max_upload_bytes=2 * MB,
                     webhook_allow_private=True) as running:  # the test receiver listens on loopback
        yield running


def written(server) -> tuple:
    """Everything a request could leave behind: files in the media and upload folders, and job rows."""
    files = sorted(p.name for d in (server.settings.media_dir, server.settings.uploads_dir) for p in d.iterdir())
    with closing(sqlite3.connect(server.settings.db_path)) as db:
        return files, db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


def png(size=(96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.linear_gradient("L").convert("RGB").resize(size).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def made(server):
    """One completed video of alice's, made through the API (shared by the tests that need one)."""
    api = client(server)
    response = api.post("/v1/videos", json={"prompt": "a lighthouse at dusk", **FAST, "seed": 7})
    assert response.status_code == 200, response.text
    assert response.headers["openai-poll-after-ms"] == "100"
    created = response.json()
    assert created["status"] == "queued" and created["seconds"] == "1.125" and created["size"] == "128x128"
    seen: list[int] = []
    video = wait(api, created["id"], seen=seen)
    assert video["status"] == "completed", video
    return video, seen


def test_health_needs_no_key_and_everything_else_does(server):
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    error = error_of(httpx.get(f"{server.url}/v1/videos"), 401)
    assert error["code"] == "invalid_api_key" and "missing" in error["message"]
    bad = httpx.get(f"{server.url}/v1/videos", headers={"Authorization": "Bearer sk-sora-nope"})
    assert error_of(bad, 401)["code"] == "invalid_api_key"
    assert httpx.get(f"{server.url}/openapi.json").status_code == 401
    assert "/v1/videos" in client(server).get("/openapi.json").json()["paths"]
    assert error_of(client(server).get("/v1/nothing"), 404)["code"] == "not_found"


def test_create_poll_and_content_are_a_signed_mp4(server, made, tmp_path):
    from sora_cli.provenance.check import check_files

    video, seen = made
    assert video["progress"] == 100 and seen == sorted(seen) and any(5 < p < 100 for p in seen)
    assert video["object"] == "video" and video["model"] == "tiny" and video["error"] is None
    assert video["seed"] == 7 and video["num_frames"] == 9 and video["completed_at"] >= video["created_at"]
    assert "openai-poll-after-ms" not in client(server).get(f"/v1/videos/{video['id']}").headers
    api = client(server)
    content = api.get(f"/v1/videos/{video['id']}/content")
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    assert content.content[4:8] == b"ftyp" and len(content.content) == int(content.headers["content-length"])
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(content.content)
    [check] = check_files([clip], anchors_pem=None, library=None)
    assert check.status in ("trusted", "intact_untrusted"), check.to_dict()
    assert check.verdict.to_dict()["generation"]["seed"] == 7
    thumb = Image.open(io.BytesIO(api.get(f"/v1/videos/{video['id']}/content?variant=thumbnail").content))
    assert thumb.format == "JPEG" and thumb.size == (128, 128)
    sheet = Image.open(io.BytesIO(api.get(f"/v1/videos/{video['id']}/content",
                                          params={"variant": "spritesheet"}).content))
    assert sheet.format == "JPEG" and sheet.size == (3 * 128, 3 * 128)  # 9 frames: a 3x3 grid
    assert error_of(api.get(f"/v1/videos/{video['id']}/content?variant=gif"), 400)["param"] == "variant"


def test_a_user_sees_and_touches_only_their_own_videos(server, made):
    video_id = made[0]["id"]
    bob = client(server, "bob")
    for response in (bob.get(f"/v1/videos/{video_id}"), bob.get(f"/v1/videos/{video_id}/content"),
                     bob.delete(f"/v1/videos/{video_id}"), bob.post(f"/v1/videos/{video_id}/cancel"),
                     bob.post(f"/v1/videos/{video_id}/remix", json={"prompt": "mine now"})):
        assert error_of(response, 404)["code"] == "not_found"
    assert video_id not in [v["id"] for v in bob.get("/v1/videos").json()["data"]]
    assert error_of(bob.get("/v1/admin/users"), 403)["code"] == "forbidden"
    names = [u["name"] for u in client(server).get("/v1/admin/users").json()["data"]]
    assert {"alice", "bob"} <= set(names)


def test_remix_keeps_lineage(server, made):
    api = client(server)
    parent = made[0]
    response = api.post(f"/v1/videos/{parent['id']}/remix", json={"prompt": "the lighthouse in a snowstorm"})
    assert response.status_code == 200, response.text
    remix = wait(api, response.json()["id"])
    assert remix["status"] == "completed" and remix["remixed_from_video_id"] == parent["id"]
    assert remix["size"] == parent["size"] and remix["num_frames"] == parent["num_frames"]  # the original's shape
    assert remix["parameters"]["task"] == "v2v"


def test_list_pages_with_after_limit_and_order(server):
    api = client(server, "carol")
    ids = []
    for index in range(5):  # cancelled at once: paging needs rows, not videos
        created = api.post("/v1/videos", json={"prompt": f"page {index}", **FAST}).json()
        api.post(f"/v1/videos/{created['id']}/cancel")
        ids.append(created["id"])
    newest_first = ids[::-1]
    first = api.get("/v1/videos", params={"limit": 2}).json()
    assert first["object"] == "list" and [v["id"] for v in first["data"]] == newest_first[:2] and first["has_more"]
    second = api.get("/v1/videos", params={"limit": 2, "after": first["last_id"]}).json()
    assert [v["id"] for v in second["data"]] == newest_first[2:4] and second["has_more"]
    third = api.get("/v1/videos", params={"limit": 2, "after": second["last_id"]}).json()
    assert [v["id"] for v in third["data"]] == newest_first[4:] and not third["has_more"]
    ascending = api.get("/v1/videos", params={"order": "asc", "limit": 10}).json()
    assert [v["id"] for v in ascending["data"]] == ids
    for params, name in (({"limit": 0}, "limit"), ({"order": "sideways"}, "order"), ({"after": "video_x"}, "after")):
        assert error_of(api.get("/v1/videos", params=params), 400)["param"] == name


def test_cancel_a_running_job(server):
    api = client(server, "carol")
    created = api.post("/v1/videos", json={"prompt": "a slow one", **FAST, "steps": 60}).json()
    deadline = time.monotonic() + 120
    while api.get(f"/v1/videos/{created['id']}").json()["progress"] < 6:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.post(f"/v1/videos/{created['id']}/cancel").status_code == 200
    video = wait(api, created["id"])
    assert video["status"] == "failed" and video["error"]["code"] == "cancelled"
    assert not (server.settings.media_dir / f"{created['id']}.mp4").exists()
    assert error_of(api.post(f"/v1/videos/{created['id']}/cancel"), 409)["code"] == "invalid_state"
    assert error_of(api.get(f"/v1/videos/{created['id']}/content"), 409)["code"] == "video_not_ready"


def test_bad_requests_are_4xx_envelopes_and_write_nothing(server):
    api = client(server, "dave")
    before = written(server)
    cases = [
        ({"prompt": CALM, "size": "130x128"}, "size", "divisible by 16"),
        ({"prompt": CALM, "size": "big"}, "size", "WIDTHxHEIGHT"),
        ({"prompt": CALM, "seconds": "0"}, "seconds", ""),
        ({"prompt": CALM, "seconds": "9999"}, "seconds", ""),
        ({"prompt": CALM, "seconds": "four"}, "seconds", ""),
        ({"prompt": CALM * 10_001}, "prompt", "limit"),
        ({"prompt": ""}, "prompt", ""),
        ({"prompt": CALM, "steps": 0}, "steps", ""),
        ({"prompt": CALM, "colour": "red"}, "colour", "unknown"),
        ({"prompt": CALM, "model": "no-such-model"}, "model", ""),
        ({"prompt": CALM, "input_reference": {"image_url": "https://example.com/a.png"}}, "input_reference",
         "data URL"),
    ]
    for body, param, words in cases:
        error = error_of(api.post("/v1/videos", json=body), 400)
        assert error["param"] == param and words in error["message"], (body, error)
    assert error_of(api.post("/v1/videos", content=b"prompt=x", headers={"content-type": "text/plain"}), 415)
    assert error_of(api.post("/v1/videos", content=b"{nope", headers={"content-type": "application/json"}), 400)
    too_big = {"input_reference": ("big.png", b"\x89PNG\r\n\x1a\n" + bytes(3 * MB), "image/png")}
    assert error_of(api.post("/v1/videos", data={"prompt": CALM}, files=too_big), 413)
    text = {"input_reference": ("notes.txt", b"hello", "text/plain")}
    assert error_of(api.post("/v1/videos", data={"prompt": CALM}, files=text), 415)["param"] == "input_reference"
    clip = {"input_reference": ("clip.mp4", b"\0\0\0\x18ftypmp42" + bytes(64), "video/mp4")}
    assert "edits" in error_of(api.post("/v1/videos", data={"prompt": CALM}, files=clip), 400)["message"]
    broken = {"input_reference": ("broken.png", b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png")}
    assert error_of(api.post("/v1/videos", data={"prompt": CALM, "model": "tiny-i2v"}, files=broken),
                    400)["param"] == "input_reference"
    assert written(server) == before


def test_moderation_refuses_before_queueing_or_before_sampling(server):
    api = client(server, "dave")
    before = written(server)
    refused = error_of(api.post("/v1/videos", json={"prompt": "a man stabbing a woman to death, blood everywhere",
                                                    **FAST}), 400)
    assert refused["code"] == "moderation_blocked" and refused["param"] == "prompt" and "violence" in refused["message"]
    assert written(server) == before  # refused by the rules: no job, no file
    # no hard rule names this one; the moderation model, run by the worker before sampling, does
    created = api.post("/v1/videos", json={"prompt": "a girl with scars on her arms holding a blade", **FAST})
    assert created.status_code == 200, created.text
    video = wait(api, created.json()["id"])
    assert video["status"] == "failed" and video["error"]["code"] == "moderation_blocked"
    assert not (server.settings.media_dir / f"{video['id']}.mp4").exists()


def test_animate_an_uploaded_photo_and_a_data_url(server):
    api = client(server, "dave")
    response = api.post("/v1/videos", data={"prompt": "the gradient moves", **{k: str(v) for k, v in FAST.items()}},
                        files={"input_reference": ("photo.png", png(), "image/png")})
    assert response.status_code == 200, response.text
    video = wait(api, response.json()["id"])
    assert video["status"] == "completed" and video["model"] == "tiny-i2v" and video["parameters"]["task"] == "i2v"
    assert not list(server.settings.uploads_dir.glob(f"{video['id']}*"))  # the job's upload goes with the job
    url = "data:image/png;base64," + base64.b64encode(png()).decode()
    queued = api.post("/v1/videos", json={"prompt": "the gradient drifts to the left", **FAST,
                                          "input_reference": {"image_url": url}})
    assert queued.status_code == 200, queued.text
    api.post(f"/v1/videos/{queued.json()['id']}/cancel")


def test_characters_are_used_by_name_and_people_are_refused(server, tmp_path):
    from skimage import data

    api = client(server, "carol")
    cat = picture_mp4(data.chelsea(), tmp_path / "cat.mp4")
    made = api.post("/v1/videos/characters", data={"name": "Chelsea"}, files={"video": ("cat.mp4", cat, "video/mp4")})
    assert made.status_code == 200, made.text
    character = made.json()
    assert character["object"] == "character" and character["id"].startswith("char_")
    assert api.get(f"/v1/videos/characters/{character['id']}").json()["name"] == "Chelsea"

    person = picture_mp4(data.astronaut()[20:320, 90:390], tmp_path / "person.mp4", (256, 256))  # Eileen Collins
    refused = api.post("/v1/videos/characters", data={"name": "Eileen"},
                       files={"video": ("person.mp4", person, "video/mp4")})
    assert error_of(refused, 400)["code"] == "character_is_a_person"
    assert [row["name"] for row in server.store.files(server.store.user("carol")["id"], "character")] == ["Chelsea"]

    response = api.post("/v1/videos", json={"prompt": "@chelsea naps in a sunny window", **FAST})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "tiny-vace"  # reference frames: a VACE model by default
    video = wait(api, response.json()["id"])
    assert video["status"] == "completed", video
    # another user's prompt does not see carol's character: @chelsea is then an unknown cameo
    other = client(server, "bob").post("/v1/videos", json={"prompt": "@chelsea naps in a sunny window", **FAST})
    assert error_of(other, 400)["code"] == "moderation_blocked"


def test_extension_continues_a_video(server, made):
    api = client(server)
    response = api.post("/v1/videos/extensions", json={"prompt": "night falls", "seconds": "1", "steps": 2,
                                                       "video": {"id": made[0]["id"]}})
    assert response.status_code == 200, response.text
    video = wait(api, response.json()["id"])
    assert video["status"] == "completed", video
    assert video["remixed_from_video_id"] == made[0]["id"] and video["num_frames"] == 9 + 8
    assert error_of(api.post("/v1/videos/extensions", json={"prompt": CALM, "video": {"id": made[0]["id"]}}),
                    400)["param"] == "seconds"


class _Receiver(BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["content-length"]))
        self.got.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_are_delivered_and_signed(server):
    from openai import OpenAI

    from sora_cli.server.webhooks import verify

    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        api = client(server, "bob")
        hook = api.post("/v1/webhook_endpoints", json={"name": "mine", "event_types": ["video.failed"],
                                                       "url": f"http://127.0.0.1:{receiver.server_port}/hook"}).json()
        assert hook["signing_secret"].startswith("whsec_")
        assert "signing_secret" not in api.get(f"/v1/webhook_endpoints/{hook['id']}").json()
        created = api.post("/v1/videos", json={"prompt": "never made", **FAST}).json()
        api.post(f"/v1/videos/{created['id']}/cancel")
        deadline = time.monotonic() + 30
        while not _Receiver.got and time.monotonic() < deadline:
            time.sleep(0.05)
        [(headers, body)] = _Receiver.got
    finally:
        receiver.shutdown()
    event = json.loads(body)
    assert event["type"] == "video.failed" and event["data"]["id"] == created["id"]
    assert verify(hook["signing_secret"], headers, body)
    assert not verify(hook["signing_secret"], headers, body.replace(b"failed", b"faxled"))
    OpenAI(api_key="unused").webhooks.verify_signature(body, headers, secret=hook["signing_secret"])


def test_webhooks_to_private_addresses_are_refused_by_default(tmp_path):
    from sora_cli.server.webhooks import BlockedAddress, check_url

    with serve_local(tmp_path, {"bob": "user"}, devices=()) as running:
        api = client(running, "bob")
        for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]/", "http://10.1.2.3/",
                    "http://169.254.169.254/latest/meta-data", "http://192.168.0.10:8080/", "http://[::ffff:127.0.0.1]/",
                    "http://user:pw@example.com/", "ftp://example.com/"):
            error = error_of(api.post("/v1/webhook_endpoints", json={"name": "x", "url": url,
                                                                     "event_types": ["video.completed"]}), 400)
            assert error["param"] == "url", url
        assert api.get("/v1/webhook_endpoints").json()["data"] == []
    check_url("http://8.8.8.8/hook")  # a public address passes (no lookup needed for a literal)
    with pytest.raises(BlockedAddress):
        check_url("http://127.0.0.1/hook")
    check_url("http://127.0.0.1/hook", allow_private=True)


def test_a_full_queue_answers_429_with_retry_after(tmp_path, cache):
    with serve_local(tmp_path, cache=cache, devices=(), max_queue=2) as idle:  # no workers: jobs stay queued
        api = client(idle)
        for _ in range(2):
            assert api.post("/v1/videos", json={"prompt": "a row of boats at the dock", **FAST}).status_code == 200
        before = written(idle)
        full = api.post("/v1/videos", json={"prompt": "one too many", **FAST})
        assert error_of(full, 429)["code"] == "queue_full" and int(full.headers["retry-after"]) >= 1
        assert written(idle) == before


def test_restart_requeues_or_fails_interrupted_jobs_and_serves_only_whole_files(tmp_path, cache, server, made):
    """What a kill -9 leaves, made by hand on a server without workers (bench/server.py kills real ones)."""
    with serve_local(tmp_path, cache=cache, devices=()) as first:
        api = client(first)
        again, given_up, done = (api.post("/v1/videos", json={"prompt": f"a harbour, take {n}", **FAST}).json()["id"]
                                 for n in range(3))
        first.store.update(again, status="in_progress", attempts=1, progress=40)  # cut short once: re-queued
        first.store.update(given_up, status="in_progress", attempts=2, progress=40)  # twice: failed for good
        output = first.settings.media_dir / f"{done}.mp4"  # a finished one: a real signed clip
        output.write_bytes((server.settings.media_dir / f"{made[0]['id']}.mp4").read_bytes())
        first.store.update(done, status="completed", output=str(output), bytes=output.stat().st_size)
        (first.settings.media_dir / f".{again}.x.part.mp4").write_bytes(b"half")  # an atomic write's temp file
    with serve_local(tmp_path, cache=cache, devices=()) as second:
        assert second.app.state.recovered == {"requeued": 1, "failed": 1, "damaged": 0, "partial_files": 1}
        api = client(second)
        assert api.get(f"/v1/videos/{again}").json()["status"] == "queued"
        failed = api.get(f"/v1/videos/{given_up}").json()
        assert failed["status"] == "failed" and failed["error"]["code"] == "interrupted"
        assert not list(second.settings.media_dir.glob(".*"))
        assert api.get(f"/v1/videos/{done}/content").content == output.read_bytes()
        output.write_bytes(output.read_bytes()[:-10])  # damaged after the fact: never served
        assert error_of(api.get(f"/v1/videos/{done}/content"), 404)
    with serve_local(tmp_path, cache=cache, devices=()) as third:
        assert third.app.state.recovered["damaged"] == 1
        assert client(third).get(f"/v1/videos/{done}").json()["error"]["code"] == "output_lost"


def test_delete_removes_the_video_and_its_files(server):
    api = client(server, "bob")
    created = api.post("/v1/videos", json={"prompt": "a soap bubble floating", **FAST}).json()
    video = wait(api, created["id"])
    output = Path(server.settings.media_dir / f"{video['id']}.mp4")
    assert output.exists()
    deleted = api.delete(f"/v1/videos/{video['id']}").json()
    assert deleted == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert not output.exists() and not (server.settings.media_dir / f"{video['id']}.sprite.jpg").exists()
    assert error_of(api.get(f"/v1/videos/{video['id']}"), 404)


def test_edits_take_a_video_id_in_a_form(server, made):
    api = client(server)
    response = api.post("/v1/videos/edits", data={"prompt": "at night", "video[id]": made[0]["id"], "steps": "2"})
    assert response.status_code == 200, response.text
    assert response.json()["remixed_from_video_id"] == made[0]["id"]
    api.post(f"/v1/videos/{response.json()['id']}/cancel")
    error = error_of(client(server, "bob").post("/v1/videos/edits", json={"prompt": CALM, "video": made[0]["id"]}), 404)
    assert error["code"] == "not_found"


def test_accounts_from_the_command_line(home):
    from typer.testing import CliRunner

    from sora_cli.cli.server_admin import app

    cli = CliRunner()
    added = cli.invoke(app, ["user", "add", "erin", "--admin"])
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert key.startswith("sk-sora-") and "shown once" in added.stderr
    assert cli.invoke(app, ["user", "add", "erin"]).exit_code == 2  # exists already
    assert "erin" in cli.invoke(app, ["user", "list"]).stdout
    with serve_local(home, {}, devices=()) as running:  # the same SORA_HOME the commands used
        def status(secret: str) -> int:
            return httpx.get(f"{running.url}/v1/videos", headers={"Authorization": f"Bearer {secret}"}).status_code

        assert status(key) == 200
        assert key not in (home / "data" / "server" / "server.db").read_bytes().decode("latin-1")  # a hash only
        assert cli.invoke(app, ["user", "disable", "erin"]).exit_code == 0 and status(key) == 401
        assert cli.invoke(app, ["user", "enable", "erin"]).exit_code == 0 and status(key) == 200
        second = cli.invoke(app, ["key", "create", "erin"]).stdout.strip()
        [key_id] = [line.split()[0] for line in cli.invoke(app, ["key", "list", "erin"]).stdout.splitlines()
                    if "active" in line and line.split()[2].startswith(second[:12])]
        assert cli.invoke(app, ["key", "revoke", key_id]).exit_code == 0
        assert status(second) == 401 and status(key) == 200


def test_a_worker_that_dies_gives_its_job_back_and_is_restarted(server):
    import signal

    pool = server.app.state.server.pool
    api = client(server, "dave")
    created = api.post("/v1/videos", json={"prompt": "interrupted", **FAST, "steps": 30}).json()
    deadline = time.monotonic() + 120
    while api.get(f"/v1/videos/{created['id']}").json()["progress"] < 6:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    victim = pool.processes[0].pid
    os.kill(victim, signal.SIGKILL)  # the OOM killer, say
    video = wait(api, created["id"])
    assert video["status"] == "completed" and pool.processes[0].pid != victim and pool.alive() == 1
