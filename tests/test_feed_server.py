"""The community feed on a real `sora serve`: loopback uvicorn, real SQLite, real MiniLM, and one path through real
(tiny) generated videos: publish -> browse -> content -> remix by another user.

Ranking tests publish completed jobs inserted straight into the store (captions from tests/data/feed), so they
cost a MiniLM encode, not a generation.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from sora_cli.server.running import serve_local
from sora_cli.server.store import new_id
from tests.serving import FAST, client, error_of, wait

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CAPTIONS = [json.loads(line) for line in (Path(__file__).parent / "data" / "feed" / "captions.jsonl").open()]
USERS = {"alice": "admin", "bob": "user", "carol": "user", "dave": "user", "erin": "user", "frank": "user",
         "gina": "user", "hal": "user"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "server-cache"  # the same folder as test_server.py's: models built once


@pytest.fixture(scope="module")
def server(tmp_path_factory, cache):
    with serve_local(tmp_path_factory.mktemp("feed-server"), USERS, cache, poll_after_ms=100) as running:
        yield running


def insert(server, author: str, prompt: str, created_at: float | None = None, status: str = "completed") -> str:
    """A finished job written straight into the store (no generation): enough to publish and rank."""
    video_id = new_id("video_")
    now = int(created_at or time.time())
    row = {"id": video_id, "user_id": server.store.user(author)["id"], "kind": "generate", "status": status,
           "progress": 100 if status == "completed" else 0, "request": "{}", "model": "tiny", "prompt": prompt,
           "seconds": "1", "size": "128x128", "created_at": now}
    assert server.store.add_job(row, max_active=10**9)
    return video_id


@pytest.fixture(scope="module")
def corpus(server) -> dict[str, str]:
    """Every caption of tests/data/feed published by bob, carol or dave (id -> theme): horror fresh, the rest
    one to three days old; vectors are computed on the first browse (no vector stored at publish)."""
    now = time.time()
    themes = {}
    for i, row in enumerate(CAPTIONS):
        age = 0 if row["theme"] == "horror" else 86400 * (1 + (i % 3))
        video_id = insert(server, ("bob", "carol", "dave")[i % 3], row["caption"], now - age)
        assert server.store.publish(video_id, server.store.user(("bob", "carol", "dave")[i % 3])["id"],
                                    row["caption"], now - age, None)
        themes[video_id] = row["theme"]
    return themes


def browse(server, who: str, **params) -> dict:
    response = client(server, who).get("/v1/feed", params={"limit": 20, **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_publish_only_your_own_completed_video(server):
    mine, queued = insert(server, "hal", "a red kite over the dunes"), insert(server, "hal", "x", status="queued")
    hal, bob = client(server, "hal"), client(server, "bob")
    assert error_of(bob.post("/v1/feed/publish", json={"video_id": mine}), 404)["code"] == "not_found"
    assert error_of(hal.post("/v1/feed/publish", json={"video_id": queued}), 409)["code"] == "invalid_state"
    assert error_of(bob.get(f"/v1/feed/{mine}"), 404)["code"] == "not_found"  # not published yet
    first = hal.post("/v1/feed/publish", json={"video_id": mine, "caption": "kite day"})
    assert first.status_code == 200, first.text
    item = first.json()
    assert item["object"] == "feed.item" and item["author"] == "hal" and item["caption"] == "kite day"
    assert item["prompt"] == "a red kite over the dunes" and item["likes"] == 0 and item["remixes"] == 0
    assert {"published_at", "liked_by_me", "remixed_from_video_id", "seconds", "size", "model"} <= set(item)
    again = hal.post("/v1/feed/publish", json={"video_id": mine, "caption": "other"})
    assert again.status_code == 200 and again.json() == item  # idempotent
    assert bob.get(f"/v1/feed/{mine}").json()["caption"] == "kite day"
    assert error_of(bob.delete(f"/v1/feed/{mine}"), 403)["code"] == "forbidden"
    assert hal.delete(f"/v1/feed/{mine}").json() == {"id": mine, "object": "feed.item.deleted", "deleted": True}
    error_of(bob.get(f"/v1/feed/{mine}"), 404)
    error_of(httpx.get(f"{server.url}/v1/feed"), 401)


def test_follows_come_first(server, corpus):
    for theme in ("space", "cats", "ocean"):
        caption = next(r["caption"] for r in CAPTIONS if r["theme"] == theme)
        old = time.time() - 5 * 86400  # published long ago: only the follow can lift them
        video_id = insert(server, "gina", caption, old)
        assert server.store.publish(video_id, server.store.user("gina")["id"], caption, old, None)
    before = browse(server, "frank", limit=10)["data"]
    assert "gina" not in [x["author"] for x in before]
    assert client(server, "frank").post("/v1/users/gina/follow").json()["following"] is True
    after = browse(server, "frank", limit=10)["data"]
    assert [x["author"] for x in after[:3]] == ["gina"] * 3 and "you follow @gina" in after[0]["why"]
    assert all(isinstance(x["score"], float) for x in after)


def test_steer_no_hides_its_topic(server, corpus):
    plain = browse(server, "carol")
    assert sum(corpus.get(x["id"]) == "horror" for x in plain["data"]) >= 8  # fresh: near the top
    steered = browse(server, "carol", steer="no horror please")
    assert sum(corpus.get(x["id"]) == "horror" for x in steered["data"]) == 0
    assert [(f["kind"], f["topic"], f["source"]) for f in steered["steering"]] == [("no", "horror", "request")]
    assert error_of(client(server, "carol").get("/v1/feed", params={"steer": "please"}), 400)["param"] == "steer"


def test_saved_steers_count_until_reset(server, corpus):
    api = client(server, "dave")
    saved = api.post("/v1/feed/steer", json={"sentence": "only cats"})
    assert saved.status_code == 200 and saved.json()["facets"][0]["kind"] == "only"
    listed = api.get("/v1/feed/steer").json()["data"]
    assert [s["sentence"] for s in listed] == ["only cats"] and 0.99 < listed[0]["weight"] <= 1.0
    top = browse(server, "dave", limit=10)
    assert sum(corpus.get(x["id"]) == "cats" for x in top["data"]) >= 8
    assert top["steering"][0]["source"] == "saved"
    assert api.delete("/v1/feed/steer").json() == {"reset": 1}
    assert sum(corpus.get(x["id"]) == "cats" for x in browse(server, "dave", limit=10)["data"]) <= 3


def test_like_unlike(server, corpus):
    video_id = next(iter(corpus))
    bob, carol = client(server, "bob"), client(server, "carol")
    assert bob.post(f"/v1/feed/{video_id}/like").json() == {"id": video_id, "liked": True, "likes": 1}
    assert bob.post(f"/v1/feed/{video_id}/like").json()["likes"] == 1  # idempotent
    assert carol.post(f"/v1/feed/{video_id}/like").json()["likes"] == 2
    assert bob.get(f"/v1/feed/{video_id}").json()["liked_by_me"] is True
    assert bob.delete(f"/v1/feed/{video_id}/like").json() == {"id": video_id, "liked": False, "likes": 1}
    assert bob.get(f"/v1/feed/{video_id}").json()["liked_by_me"] is False
    error_of(bob.post("/v1/feed/video_nope/like"), 404)


def test_hide_and_see_less(server, corpus):
    api = client(server, "erin")
    before = {x["id"]: x["score"] for x in browse(server, "erin", limit=100)["data"]}
    horror = [i for i in before if corpus.get(i) == "horror"][:10]
    assert api.post(f"/v1/feed/{horror[0]}/hide").json() == {"id": horror[0], "hidden": True}
    assert api.post(f"/v1/feed/{horror[1]}/see_less").json() == {"id": horror[1], "see_less": True}
    after = browse(server, "erin", limit=100)
    scores = {x["id"]: x["score"] for x in after["data"]}
    assert horror[0] not in scores and horror[1] not in scores
    assert [f["source"] for f in after["steering"]] == ["see_less"]
    # the see-less facet ("fewer <that caption>") pushes the rest of its theme down
    drops = [before[i] - scores.get(i, -10.0) for i in horror[2:]]
    assert sum(drops) / len(drops) > 0.2, drops
    assert api.delete("/v1/feed/steer").json() == {"reset": 1}  # see-less forgotten, the hides stay
    assert horror[1] not in [x["id"] for x in browse(server, "erin", limit=100)["data"]]


def test_report_reaches_the_admins(server, corpus):
    video_id = list(corpus)[5]
    assert client(server, "frank").post(f"/v1/feed/{video_id}/report", json={"reason": "spam"}).json() == \
        {"id": video_id, "reported": True}
    error_of(client(server, "frank").post(f"/v1/feed/{video_id}/report", json={}), 400)
    error_of(client(server, "frank").get("/v1/admin/reports"), 403)
    reports = client(server, "alice").get("/v1/admin/reports").json()["data"]
    assert any(r["video_id"] == video_id and r["reason"] == "spam" and r["reporter"] == "frank" for r in reports)


def test_follow_and_mutual(server):
    bob, carol = client(server, "bob"), client(server, "carol")
    assert bob.post("/v1/users/carol/follow").json() == {"user": "carol", "following": True, "mutual": False}
    assert carol.post("/v1/users/bob/follow").json() == {"user": "bob", "following": True, "mutual": True}
    profile = bob.get("/v1/users/carol").json()
    assert profile["name"] == "carol" and profile["you_follow"] and profile["follows_you"]
    assert profile["followers"] == 1 and profile["following"] == 1
    assert bob.delete("/v1/users/carol/follow").json() == {"user": "carol", "following": False, "mutual": False}
    assert carol.get("/v1/users/bob").json()["follows_you"] is False
    error_of(bob.post("/v1/users/nobody/follow"), 404)
    error_of(bob.post("/v1/users/bob/follow"), 400)
    carol.delete("/v1/users/bob/follow")


def test_minor_daily_limit_and_guardian_setting(server, corpus):
    admin = client(server, "alice")
    error_of(client(server, "bob").post("/v1/admin/users/hal/minor", json={"minor": True}), 403)
    flags = admin.post("/v1/admin/users/hal/minor", json={"minor": True, "daily_feed_limit": 5,
                                                          "personalised": False}).json()
    assert flags["minor"] is True and flags["daily_feed_limit"] == 5 and flags["personalised"] is False
    assert admin.post("/v1/admin/users/gina/minor", json={"minor": True}).json()["daily_feed_limit"] == 50
    first = browse(server, "hal", limit=3, steer="no horror please")
    assert len(first["data"]) == 3 and first["remaining_today"] == 2 and first["steering"] == []
    second = browse(server, "hal", limit=3)
    assert len(second["data"]) == 2 and second["remaining_today"] == 0 and second["nudge"]
    third = browse(server, "hal")
    assert third["data"] == [] and third["remaining_today"] == 0 and "make" in third["nudge"]
    # personalised=false (the guardian's setting) ignores the steer: the order is the unsteered one
    admin.post("/v1/admin/users/gina/minor", json={"minor": True, "daily_feed_limit": 1000, "personalised": False})
    steered = browse(server, "gina", steer="no horror please")
    plain = browse(server, "gina")
    assert steered["steering"] == [] and [x["id"] for x in steered["data"]] == [x["id"] for x in plain["data"]]
    assert sum(corpus.get(x["id"]) == "horror" for x in steered["data"]) >= 8
    assert browse(server, "bob")["remaining_today"] is None
    admin.post("/v1/admin/users/gina/minor", json={"minor": False})


def test_publish_browse_content_remix_with_real_videos(server):
    alice, bob = client(server, "alice"), client(server, "bob")
    made = alice.post("/v1/videos", json={"prompt": "a paper boat on a pond", **FAST, "seed": 3})
    assert made.status_code == 200, made.text
    video = wait(alice, made.json()["id"])
    assert video["status"] == "completed", video
    error_of(bob.post(f"/v1/videos/{video['id']}/remix", json={"prompt": "at night"}), 404)  # not published yet
    assert alice.post("/v1/feed/publish", json={"video_id": video["id"]}).json()["author"] == "alice"
    seen = browse(server, "bob", steer="more paper boats", limit=5)["data"]
    assert seen[0]["id"] == video["id"] and seen[0]["caption"] == "a paper boat on a pond"
    content = bob.get(f"/v1/feed/{video['id']}/content")
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    assert content.content == alice.get(f"/v1/videos/{video['id']}/content").content
    thumb = bob.get(f"/v1/feed/{video['id']}/content", params={"variant": "thumbnail"})
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    error_of(bob.get(f"/v1/videos/{video['id']}/content"), 404)  # the videos API stays the owner's
    remix = bob.post(f"/v1/videos/{video['id']}/remix", json={"prompt": "a paper boat on a pond at night"})
    assert remix.status_code == 200, remix.text
    assert remix.json()["remixed_from_video_id"] == video["id"]
    assert bob.get(f"/v1/feed/{video['id']}").json()["remixes"] == 1
    done = wait(bob, remix.json()["id"])
    assert done["status"] == "completed" and done["remixed_from_video_id"] == video["id"], done
    error_of(alice.get(f"/v1/videos/{done['id']}"), 404)  # the remix is bob's


def test_cameo_uses_are_the_owners_only(server):
    pytest.importorskip("dlib")
    from sora_cli.cameo import CameoBook
    from sora_cli.server.cameos import server_cameo_book
    from tests import cameo_clips as clips

    book = CameoBook(server.settings.paths)
    challenge = book.new_challenge()
    book.enroll(frames=clips.turning_clip(challenge.turns), fps=8.0, handle="bob", name="Bob")
    draft = insert(server, "carol", "@bob surfing a huge wave", status="failed")
    other = insert(server, "dave", "@bobby on a bike")
    bob, carol = client(server, "bob"), client(server, "carol")
    uses = bob.get("/v1/cameos/bob/uses").json()["data"]
    assert [(u["id"], u["author"], u["status"], u["published"]) for u in uses] == [(draft, "carol", "failed", False)]
    assert other not in [u["id"] for u in uses]
    error_of(carol.get("/v1/cameos/bob/uses"), 404)
    error_of(carol.delete(f"/v1/cameos/bob/uses/{draft}"), 404)
    error_of(bob.get("/v1/cameos/nobody/uses"), 404)
    error_of(bob.delete(f"/v1/cameos/bob/uses/{other}"), 404)
    assert bob.delete(f"/v1/cameos/bob/uses/{draft}").json()["deleted"] is True
    assert server.store.job(draft) is None and bob.get("/v1/cameos/bob/uses").json()["data"] == []
    # the server's book: "mutuals" from the follows table; a minor only where approved by name
    served = server_cameo_book(server.settings.paths, server.store)
    served.grant("bob", audience="mutuals")
    client(server, "frank").post("/v1/users/bob/follow")
    assert "@bob" not in served.permitted("frank")
    bob.post("/v1/users/frank/follow")
    assert "@bob" in served.permitted("frank")
    frank = client(server, "frank")  # the real admission check uses the same book
    queued = frank.post("/v1/videos", json={"prompt": "@bob surfing a huge wave", **FAST})
    assert queued.status_code == 200, queued.text
    frank.post(f"/v1/videos/{queued.json()['id']}/cancel")
    served.grant("bob", audience="everyone")
    assert "@bob" in served.permitted("dave")
    client(server, "alice").post("/v1/admin/users/dave/minor", json={"minor": True})
    assert "@bob" not in served.permitted("dave")
    refused = client(server, "dave").post("/v1/videos", json={"prompt": "@bob surfing a huge wave", **FAST})
    assert error_of(refused, 400)["code"] == "moderation_blocked" and "minor" in refused.text
    served.grant("bob", ["dave"])
    assert "@bob" in served.permitted("dave")
