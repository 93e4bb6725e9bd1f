"""Cameos over HTTP on a real `sora serve` (loopback uvicorn, real SQLite, real dlib): challenge, enrolment with a
recorded clip (an MP4 made from skimage photos by tests/cameo_clips.py), sharing, rules, refused enrolments, and
revocation that deletes other people's drafts but not the owner's own videos.

The tests share one server and run in order: bob enrols in the first and revokes in the last.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("dlib")
pytest.importorskip("skimage.data")

import cameo_clips as clips  # noqa: E402

from sora_cli.server.running import serve_local  # noqa: E402
from sora_cli.server.settings import MB  # noqa: E402
from sora_cli.server.store import new_id  # noqa: E402
from tests.serving import FAST, client, error_of

os.environ.setdefault("HF_HUB_OFFLINE", "1")
USERS = {"alice": "admin", "bob": "user", "carol": "user", "dave": "user"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "server-cache"  # test_server.py's: models built once
    with serve_local(tmp_path_factory.mktemp("cameo-server"), USERS, cache, poll_after_ms=100,
                     max_upload_bytes=2 * MB) as running:
        yield running


def challenge(api: httpx.Client) -> dict:
    issued = api.post("/v1/cameos/challenge")
    assert issued.status_code == 200, issued.text
    return issued.json()


def enrol(api: httpx.Client, clip: Path, challenge_id: str, **fields: str) -> httpx.Response:
    with clip.open("rb") as video:
        return api.post("/v1/cameos", data={"challenge_id": challenge_id, "name": "Bob", **fields},
                        files={"video": (clip.name, video, "video/mp4")})


def cameo_folders(server) -> set[str]:
    root = server.settings.paths.data_dir / "cameos"
    return {p.name for p in root.iterdir()} if root.is_dir() else set()


def create(server, who: str, prompt: str) -> httpx.Response:
    return client(server, who).post("/v1/videos", json={"prompt": prompt, **FAST})


def cancel(server, who: str, response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    video_id = response.json()["id"]
    client(server, who).post(f"/v1/videos/{video_id}/cancel")
    return video_id


def finished(server, author: str, prompt: str) -> tuple[str, Path]:
    """A completed, published job with a file, written straight into the store (no generation)."""
    video_id = new_id("video_")
    output = server.settings.media_dir / f"{video_id}.mp4"
    output.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    user_id = server.store.user(author)["id"]
    row = {"id": video_id, "user_id": user_id, "kind": "generate", "status": "completed", "progress": 100,
           "request": "{}", "model": "tiny", "prompt": prompt, "seconds": "1", "size": "128x128",
           "created_at": int(time.time())}
    assert server.store.add_job(row, max_active=10**9)
    assert server.store.update(video_id, output=str(output), bytes=output.stat().st_size)
    assert server.store.publish(video_id, user_id, prompt, time.time(), None)
    return video_id, output


@pytest.fixture(scope="module")
def bob_clip(server, tmp_path_factory) -> dict:
    """bob enrols @bob over HTTP (once for the module); the clip follows his challenge."""
    bob = client(server, "bob")
    issued = challenge(bob)
    assert set(issued) >= {"id", "turns", "expires_at", "phrase", "instructions"} and len(issued["turns"]) == 4
    clip = clips.write_clip(clips.turning_clip(issued["turns"]), tmp_path_factory.mktemp("clips") / "bob.mp4")
    enrolled = enrol(bob, clip, issued["id"])
    assert enrolled.status_code == 200, enrolled.text
    return {"clip": clip, "cameo": enrolled.json()}


def test_enrol_then_share_step_by_step(server, bob_clip):
    cameo = bob_clip["cameo"]
    assert (cameo["handle"], cameo["owner"], cameo["name"], cameo["audience"]) == ("bob", "bob", "Bob", "only-me")
    bob, carol, dave = client(server, "bob"), client(server, "carol"), client(server, "dave")
    assert [c["handle"] for c in bob.get("/v1/cameos").json()["data"]] == ["bob"]
    assert carol.get("/v1/cameos").json()["data"] == []
    error_of(carol.get("/v1/cameos/bob"), 404)
    error_of(httpx.get(f"{server.url}/v1/cameos"), 401)

    refused = create(server, "carol", "@bob surfing a huge wave")
    assert error_of(refused, 400)["code"] == "moderation_blocked" and "@bob" in refused.text
    error_of(carol.post("/v1/cameos/bob/grant", json={"approve": ["carol"]}), 404)  # carol cannot see it
    error_of(bob.post("/v1/cameos/bob/grant", json={"approve": ["nobody"]}), 400)  # no such user
    error_of(bob.post("/v1/cameos/bob/grant", json={"audience": "friends"}), 400)
    error_of(bob.post("/v1/cameos/bob/grant", json={}), 400)
    granted = bob.post("/v1/cameos/bob/grant", json={"audience": "approved", "approve": ["carol"]})
    assert granted.status_code == 200, granted.text
    assert (granted.json()["audience"], granted.json()["approved"]) == ("approved", ["carol"])

    assert carol.get("/v1/cameos/bob").json() == {"handle": "bob", "object": "cameo", "name": "Bob", "owner": "bob",
                                                   "access": "permitted"}
    assert [c["access"] for c in carol.get("/v1/cameos").json()["data"]] == ["permitted"]
    error_of(carol.post("/v1/cameos/bob/grant", json={"audience": "everyone"}), 403)
    error_of(carol.delete("/v1/cameos/bob"), 403)
    cancel(server, "carol", create(server, "carol", "@bob surfing a huge wave"))
    error_of(create(server, "dave", "@bob surfing a huge wave"), 400)  # approved means carol, not dave

    rules = bob.post("/v1/cameos/bob/rules", json={"rules": ["no hats"]})
    assert rules.status_code == 200, rules.text
    assert [(r["text"], r["enforced"]) for r in rules.json()["rules"]] == [("no hats", True)]
    hat = create(server, "carol", "@bob wearing a hat")
    assert error_of(hat, 400)["code"] == "moderation_blocked" and "no hats" in hat.text
    assert bob.post("/v1/cameos/bob/rules", json={"rules": []}).json()["rules"] == []

    everyone = bob.post("/v1/cameos/bob/grant", json={"audience": "everyone", "unapprove": ["carol"]}).json()
    assert (everyone["audience"], everyone["approved"]) == ("everyone", [])
    assert bob.get("/v1/cameos/bob").json()["version"] == everyone["version"]
    cancel(server, "dave", create(server, "dave", "@bob on a bike"))
    assert dave.get("/v1/cameos/bob").json()["access"] == "permitted"


def test_refused_enrolments_store_nothing(server, bob_clip, tmp_path):
    carol, dave = client(server, "carol"), client(server, "dave")
    before = cameo_folders(server)
    issued = challenge(dave)
    wrong = [{"left": "right", "right": "left"}[t] for t in issued["turns"]]  # every turn the other way
    clip = clips.write_clip(clips.turning_clip(wrong), tmp_path / "wrong.mp4")
    failed = enrol(dave, clip, issued["id"], name="Dave")
    assert error_of(failed, 400)["code"] == "cameo_refused" and "enrolment refused" in failed.text
    error_of(enrol(dave, clip, issued["id"], name="Dave"), 400)  # one attempt per challenge
    issued = challenge(dave)
    photo = clips.write_clip(clips.tilted_clip(issued["turns"]), tmp_path / "photo.mp4")
    assert error_of(enrol(dave, photo, issued["id"], name="Dave"), 400)["code"] == "cameo_refused"
    error_of(dave.get("/v1/cameos/dave"), 404)
    assert "dave" not in [c["handle"] for c in dave.get("/v1/cameos").json()["data"]]
    # bob's face again, as carol: the same face cannot be a second cameo
    issued = challenge(carol)
    twin = clips.write_clip(clips.turning_clip(issued["turns"]), tmp_path / "twin.mp4")
    assert "already enrolled as @bob" in error_of(enrol(carol, twin, issued["id"], name="C"), 400)["message"]
    issued = challenge(carol)
    assert error_of(enrol(carol, twin, issued["id"], handle="bob"), 409)["code"] == "handle_taken"
    assert error_of(enrol(carol, twin, issued["id"], handle="dave"), 409)["param"] == "handle"  # dave's name
    assert error_of(enrol(carol, twin, issued["id"], handle="Not A Handle"), 400)["param"] == "handle"
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2 * MB + 100))
    assert error_of(enrol(carol, big, issued["id"], name="C"), 413)["code"] == "file_too_large"
    assert cameo_folders(server) == before
    assert not [p for p in server.settings.uploads_dir.iterdir() if p.name.startswith(".cameo-")]


def test_a_handle_other_than_the_user_name_is_still_the_users(server, bob_clip, tmp_path):
    carol, bob = client(server, "carol"), client(server, "bob")
    issued = challenge(carol)
    frames = clips.turning_clip(issued["turns"], img=clips.stranger(3), cx=138.0, radius=0.75 * 223)
    made = enrol(carol, clips.write_clip(frames, tmp_path / "carol.mp4"), issued["id"], handle="@Caro", name="Caro")
    assert made.status_code == 200, made.text
    assert (made.json()["handle"], made.json()["owner"], made.json()["access"]) == ("caro", "carol", "owner")
    listed = [(c["handle"], c["access"]) for c in carol.get("/v1/cameos").json()["data"]]
    assert listed == [("bob", "permitted"), ("caro", "owner")]  # bob shares with everyone by now
    error_of(bob.get("/v1/cameos/caro"), 404)
    error_of(create(server, "bob", "@caro dancing"), 400)
    video_id = cancel(server, "carol", create(server, "carol", "@caro dancing"))  # only-me: carol is the owner
    assert [u["id"] for u in carol.get("/v1/cameos/caro/uses").json()["data"]] == [video_id]
    assert carol.post("/v1/cameos/caro/grant", json={"approve": ["bob"]}).json()["approved"] == ["bob"]


def test_revoke_deletes_other_peoples_drafts_not_the_owners(server, bob_clip):
    bob, carol = client(server, "bob"), client(server, "carol")
    draft, draft_file = finished(server, "carol", "@bob surfing a huge wave")
    own, own_file = finished(server, "bob", "@bob on a bike")
    running = create(server, "dave", "@bob juggling")  # accepted (audience everyone), left to run
    assert running.status_code == 200, running.text
    before = {j["id"] for j in bob.get("/v1/cameos/bob/uses").json()["data"]}
    assert {draft, own, running.json()["id"]} <= before

    revoked = bob.delete("/v1/cameos/bob")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["handle"] == "bob" and revoked.json()["revoked"] is True
    assert revoked.json()["drafts_removed"] == len(before - {own}) and revoked.json()["drafts_not_removed"] == []
    error_of(carol.get(f"/v1/videos/{draft}"), 404)
    error_of(carol.get(f"/v1/feed/{draft}"), 404)
    assert not draft_file.exists() and server.store.job(running.json()["id"]) is None
    assert bob.get(f"/v1/videos/{own}").json()["status"] == "completed" and own_file.exists()
    assert bob.get(f"/v1/feed/{own}").status_code == 200

    after = create(server, "carol", "@bob surfing a huge wave")
    assert error_of(after, 400)["code"] == "moderation_blocked" and "revoked" in after.text
    error_of(bob.get("/v1/cameos/bob"), 404)
    assert bob.get("/v1/cameos").json()["data"] == []
    error_of(bob.delete("/v1/cameos/bob"), 404)
    assert "bob" not in cameo_folders(server)
    issued = challenge(bob)
    again = enrol(bob, bob_clip["clip"], issued["id"])
    assert error_of(again, 409)["code"] == "handle_taken" and "revoked" in again.text
