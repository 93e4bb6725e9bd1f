"""The community feed: publish, browse (ranked by `sora_cli.feed.rank`), like, hide, see less, report, steer;
follows; and the cameo owner's view of every job that used their likeness.

A published video is visible to every user (GET, content, remix); anything else stays 404 to all but its owner.
Caption vectors live in the store (a blob per item, computed at publish or on the first browse) and in the app's
in-memory `CaptionIndex`, so a warm browse of 10,000 items is a SQL read plus numpy.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from sora_cli.errors import UsageError
from sora_cli.feed.index import CaptionIndex
from sora_cli.server.deps import Admin, ServerState, User, state
from sora_cli.server.schemas import ApiError, not_found, video_object

router = APIRouter(tags=["feed"])
LONG_BROWSE = 100  # items served in a UTC day after which the feed suggests making something instead
MINOR_DAILY_LIMIT = 50


def index_of(request: Request) -> CaptionIndex:
    return request.app.state.feed


def item_object(row: dict) -> dict[str, Any]:
    return {"id": row["id"], "object": "feed.item", "author": row["author"], "caption": row["caption"],
            "prompt": row["prompt"], "created_at": row["created_at"], "published_at": int(row["published_at"]),
            "likes": row["likes"], "remixes": row["remixes"], "liked_by_me": bool(row["liked_by_me"]),
            "remixed_from_video_id": row["remixed_from"], "seconds": row["seconds"], "size": row["size"],
            "model": row["model"]}


def published(server: ServerState, user: dict, video_id: str) -> dict:
    row = server.store.feed_item(video_id, user["id"])
    if row is None:
        raise not_found("feed item", video_id)
    return row


# -- publishing ------------------------------------------------------------------------------------------------

class PublishBody(BaseModel):
    video_id: str = Field(min_length=1, max_length=100)
    caption: str | None = Field(default=None, max_length=2000)


@router.post("/v1/feed/publish", summary="Publish one of your completed videos to the feed")
def publish(body: PublishBody, request: Request, user: User) -> dict:
    server = state(request)
    job = server.store.job(body.video_id, user["id"])
    if job is None:
        raise not_found("video", body.video_id)
    if job["status"] != "completed":
        raise ApiError(409, f"video {body.video_id} is {video_object(job)['status']}; only a completed video can be "
                       "published", code="invalid_state")
    existing = server.store.feed_item(job["id"], user["id"])
    if existing is not None:  # idempotent: the same item, caption unchanged
        return item_object(existing)
    caption = (body.caption or "").strip() or job["prompt"]
    index = index_of(request)
    vector = index.encode([caption])[0]
    server.store.publish(job["id"], user["id"], caption, time.time(), vector.tobytes())
    index.add({job["id"]: vector})
    return item_object(published(server, user, job["id"]))


# -- browsing -------------------------------------------------------------------------------------------------------

def _facets(server: ServerState, index: CaptionIndex, user: dict, steer: str | None, now: float) -> tuple:
    """(this request's steer, saved steers decayed, see-less captions decayed), embedded, and their dicts."""
    from sora_cli.feed.prefs import HALF_LIFE_DAYS, MIN_WEIGHT, SEE_LESS_HALF_LIFE_DAYS, decay
    from sora_cli.feed.steer import Facet, facets_from_json, parse

    facets: list[tuple[Facet, str]] = []
    if steer:
        try:
            facets += [(f, "request") for f in parse(steer).facets]
        except UsageError as exc:
            raise ApiError(400, str(exc), code="invalid_value", param="steer") from None
    for saved in server.store.steers(user["id"]):
        weight = saved["weight"] * decay(now - saved["created_at"], HALF_LIFE_DAYS)
        if weight >= MIN_WEIGHT:
            facets += [(f, "saved") for f in facets_from_json(saved["facets"], weight)]
    known = {}
    for less in server.store.see_less_rows(user["id"]):
        weight = decay(now - less["created_at"], SEE_LESS_HALF_LIFE_DAYS)
        if weight >= MIN_WEIGHT:
            facets.append((Facet("fewer", less["caption"], weight), "see_less"))
            vector = index.get(less["video_id"])  # the caption's vector is the item's: nothing to encode
            if vector is not None:
                known[less["caption"]] = vector
    embedded = index.embed([f for f, _ in facets], known)
    return embedded, [{**f.to_dict(), "source": source} for f, source in facets]


def _vectors(server: ServerState, index: CaptionIndex, ids: list[str]) -> dict[str, Any]:
    """Vectors the index lacks: the stored blobs, else MiniLM (then stored, so it runs once per item)."""
    import numpy as np

    stored = server.store.feed_vectors(ids)
    out = {k: np.frombuffer(blob, dtype=np.float32) for k, (blob, _) in stored.items() if blob is not None}
    todo = [k for k, (blob, _) in stored.items() if blob is None]
    if todo:
        encoded = dict(zip(todo, index.encode([stored[k][1] for k in todo]), strict=True))
        server.store.set_feed_vectors({k: v.tobytes() for k, v in encoded.items()})
        out.update(encoded)
    gone = [k for k in ids if k not in stored]  # unpublished since the candidates were read: never ranked high
    return {**out, **{k: np.zeros(384, dtype=np.float32) for k in gone}}


def _nudge(shown: int, capped: bool) -> str | None:
    make = "make one instead (POST /v1/videos, `sora generate`), or remix one you liked (`sora remix feed:ID`)"
    if capped:
        return f"that's today's feed ({shown} videos): {make}"
    return f"{shown} videos browsed today: {make}" if shown >= LONG_BROWSE else None


@router.get("/v1/feed", summary="The feed, ranked for you (follows first, steerable in plain language)")
def browse_feed(request: Request, user: User, steer: Annotated[str | None, Query(max_length=500)] = None,
                limit: Annotated[int, Query(ge=1, le=100)] = 20, personalised: bool = True,
                offset: Annotated[int, Query(ge=0, le=1000)] = 0) -> dict:
    from sora_cli.feed.rank import FeedItem, rank

    server, index, now = state(request), index_of(request), time.time()
    store, uid = server.store, user["id"]
    flags = store.flags(uid)
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    daily = (flags["daily_feed_limit"] or MINOR_DAILY_LIMIT) if flags["minor"] else None
    if flags["minor"] and not flags["personalised"]:
        personalised = False  # the guardian's setting wins over the request's
    if daily is not None:
        remaining = max(0, daily - store.count_shown(uid, day, 0))
        if remaining == 0:
            return {"object": "list", "data": [], "steering": [], "remaining_today": 0, "nudge": _nudge(daily, True)}
        limit = min(limit, remaining)
    rows = store.feed_candidates(uid)
    ids = [r[0] for r in rows]
    vectors = index.rows(ids, lambda need: _vectors(server, index, need))
    items = [FeedItem(id=r[0], author=r[1], caption="", created_at=r[2], likes=r[3], remixes=r[4]) for r in rows]
    facets, steering = _facets(server, index, user, steer, now) if personalised else ((), [])
    ranked = rank(items, now=now, vectors=vectors, steering=facets, follows=store.following_names(uid),
                  limit=offset + limit, personalised=personalised)[offset:]
    details = store.feed_details([r.item.id for r in ranked], uid)
    data = [{**item_object(row), "score": round(r.score, 4), "why": r.why}
            for r, row in zip(ranked, details, strict=True)]
    shown = store.count_shown(uid, day, len(data))
    remaining_today = None if daily is None else max(0, daily - shown)
    return {"object": "list", "data": data, "steering": steering, "remaining_today": remaining_today,
            "nudge": _nudge(shown, False) if remaining_today != 0 else _nudge(daily or shown, True)}


# -- saved steers (before /v1/feed/{video_id}, which would take "steer" for an id) ------------------------------

class SteerBody(BaseModel):
    sentence: str = Field(min_length=1, max_length=500)


@router.post("/v1/feed/steer", summary="Save a steer (\"more space, fewer rom-coms\"); it fades over days")
def save_steer(body: SteerBody, request: Request, user: User) -> dict:
    from sora_cli.feed.steer import parse

    try:
        steering = parse(body.sentence)
    except UsageError as exc:
        raise ApiError(400, str(exc), code="invalid_value", param="sentence") from None
    now = time.time()
    steer_id = state(request).store.add_steer(user["id"], body.sentence, steering.to_json(), now)
    return {"id": steer_id, "object": "feed.steer", "sentence": body.sentence,
            "facets": [f.to_dict() for f in steering.facets], "created_at": int(now)}


@router.get("/v1/feed/steer", summary="Your saved steers, with their weight now")
def list_steers(request: Request, user: User) -> dict:
    from sora_cli.feed.prefs import HALF_LIFE_DAYS, decay

    now = time.time()
    data = [{"id": s["id"], "object": "feed.steer", "sentence": s["sentence"], "facets": json.loads(s["facets"]),
             "created_at": int(s["created_at"]),
             "weight": round(s["weight"] * decay(now - s["created_at"], HALF_LIFE_DAYS), 4)}
            for s in state(request).store.steers(user["id"])]
    return {"object": "list", "data": data}


@router.delete("/v1/feed/steer", summary="Forget your saved steers and see-less (hides stay)")
def reset_steers(request: Request, user: User) -> dict:
    return {"reset": state(request).store.reset_steers(user["id"])}


# -- one item ---------------------------------------------------------------------------------------------------

@router.delete("/v1/feed/{video_id}", summary="Take a video off the feed (its owner or an admin)")
def unpublish(video_id: str, request: Request, user: User) -> dict:
    server = state(request)
    row = published(server, user, video_id)
    if row["author_id"] != user["id"] and user["role"] != "admin":
        raise ApiError(403, f"only @{row['author']} or an admin can take {video_id} off the feed", code="forbidden")
    server.store.unpublish(video_id)
    return {"id": video_id, "object": "feed.item.deleted", "deleted": True}


@router.get("/v1/feed/{video_id}", summary="A published video")
def feed_item(video_id: str, request: Request, user: User) -> dict:
    return item_object(published(state(request), user, video_id))


@router.get("/v1/feed/{video_id}/content", response_class=FileResponse, summary="A published video's file")
def feed_content(video_id: str, request: Request, user: User,
                 variant: Literal["video", "thumbnail", "spritesheet"] = "video") -> FileResponse:
    server = state(request)
    from sora_cli.server.videos import content_response

    return content_response(server, published(server, user, video_id), variant)


def _like(request: Request, user: dict, video_id: str, liked: bool) -> dict:
    server = state(request)
    published(server, user, video_id)
    return {"id": video_id, "liked": liked, "likes": server.store.like(video_id, user["id"], liked)}


@router.post("/v1/feed/{video_id}/like", summary="Like a published video")
def like(video_id: str, request: Request, user: User) -> dict:
    return _like(request, user, video_id, True)


@router.delete("/v1/feed/{video_id}/like", summary="Take your like back")
def unlike(video_id: str, request: Request, user: User) -> dict:
    return _like(request, user, video_id, False)


@router.post("/v1/feed/{video_id}/hide", summary="Never show this video to you again")
def hide(video_id: str, request: Request, user: User) -> dict:
    server = state(request)
    published(server, user, video_id)
    server.store.hide(user["id"], video_id, time.time())
    return {"id": video_id, "hidden": True}


@router.post("/v1/feed/{video_id}/see_less", summary="See less like this (fades over two weeks) and hide this one")
def see_less(video_id: str, request: Request, user: User) -> dict:
    server = state(request)
    row = published(server, user, video_id)
    server.store.see_less(user["id"], video_id, row["caption"], time.time())
    return {"id": video_id, "see_less": True}


class ReportBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/v1/feed/{video_id}/report", summary="Report a published video to the server's admins")
def report(video_id: str, body: ReportBody, request: Request, user: User) -> dict:
    server = state(request)
    published(server, user, video_id)
    server.store.add_report(video_id, user["id"], body.reason.strip() or body.reason)
    return {"id": video_id, "reported": True}


@router.get("/v1/admin/reports", tags=["admin"], summary="Reports on feed items, newest first")
def list_reports(request: Request, admin: Admin) -> dict:
    data = [{"id": r["id"], "object": "feed.report", "video_id": r["video_id"], "reason": r["reason"],
             "reporter": r["reporter"], "author": r["author"], "caption": r["caption"],
             "published": r["caption"] is not None, "created_at": r["created_at"]}
            for r in state(request).store.reports()]
    return {"object": "list", "data": data, "has_more": False}


# -- people -------------------------------------------------------------------------------------------------------

def _person(server: ServerState, name: str) -> dict:
    found = server.store.user(name)
    if found is None or found["disabled"]:
        raise not_found("user", name)
    return found


def _follow(request: Request, user: dict, name: str, following: bool) -> dict:
    server = state(request)
    other = _person(server, name)
    if other["id"] == user["id"]:
        raise ApiError(400, "you cannot follow yourself", code="invalid_value", param="name")
    server.store.follow(user["id"], other["id"], following)
    return {"user": other["name"], "following": following,
            "mutual": following and server.store.follows(other["id"], user["id"])}


@router.post("/v1/users/{name}/follow", tags=["users"], summary="Follow someone: their videos come first")
def follow(name: str, request: Request, user: User) -> dict:
    return _follow(request, user, name, True)


@router.delete("/v1/users/{name}/follow", tags=["users"], summary="Stop following someone")
def unfollow(name: str, request: Request, user: User) -> dict:
    return _follow(request, user, name, False)


@router.get("/v1/users/{name}", tags=["users"], summary="Someone's follower counts and how you are linked")
def profile(name: str, request: Request, user: User) -> dict:
    server = state(request)
    other = _person(server, name)
    followers, following = server.store.follow_counts(other["id"])
    return {"name": other["name"], "object": "user.profile", "followers": followers, "following": following,
            "you_follow": server.store.follows(user["id"], other["id"]),
            "follows_you": server.store.follows(other["id"], user["id"])}


# -- cameo owners: every use of their likeness ------------------------------------------------------------------

def _cameo_uses(server: ServerState, user: dict, handle: str) -> list[dict]:
    """Every job that used @handle, drafts included; 404 unless `user` owns the cameo in the server's book."""
    from sora_cli.cameo.access import normalize_handle
    from sora_cli.errors import SoraError

    try:
        handle = normalize_handle(handle)
        record = server.studio.guard.book.get(handle)
    except SoraError:
        raise not_found("cameo", handle) from None
    if record.owner != user["name"].lower():
        raise not_found("cameo", handle)
    from sora_cli.server.cameos import jobs_using

    return jobs_using(server.store, handle)


@router.get("/v1/cameos/{handle}/uses", tags=["cameos"], summary="Every video that used your cameo, drafts included")
def cameo_uses(handle: str, request: Request, user: User) -> dict:
    data = [{"id": j["id"], "object": "cameo.use", "author": j["author"], "status": video_object(j)["status"],
             "prompt": j["prompt"], "created_at": j["created_at"], "published": bool(j["published"])}
            for j in _cameo_uses(state(request), user, handle)]
    return {"object": "list", "data": data, "has_more": False}


@router.delete("/v1/cameos/{handle}/uses/{video_id}", tags=["cameos"],
               summary="Delete a video that used your cameo, whoever made it (files too)")
def delete_cameo_use(handle: str, video_id: str, request: Request, user: User) -> dict:
    server = state(request)
    job = next((j for j in _cameo_uses(server, user, handle) if j["id"] == video_id), None)
    if job is None:
        raise not_found("use of the cameo", video_id)
    from sora_cli.server.cameos import remove_job

    if job["status"] == "in_progress" or not remove_job(server, video_id, wait=0):
        raise ApiError(409, f"video {video_id} is being generated; try again when it has finished",
                       code="invalid_state")
    return {"id": video_id, "object": "video.deleted", "deleted": True}
