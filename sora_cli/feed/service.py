"""The two feeds the CLI browses, behind one shape: the local library (LocalFeed) and a server's (RemoteFeed).

Both give feed items as the server's FeedItem dicts (`id, author, caption, prompt, created_at, likes, remixes,
why, score, …`) so the CLI renders one thing. The local feed is your own videos, ranked and steered exactly
like a server's (same parser, same ranking), with preferences in `feed.db` beside the library; likes, follows,
publishing and reports only exist on a server.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from sora_cli.config import Config
from sora_cli.errors import UsageError

LONG_BROWSE = 100  # items shown in a day after which browsing suggests making something instead


class LocalFeed:
    kind = "local"

    def __init__(self, config: Config | None = None):
        from sora_cli.feed.prefs import Preferences

        self.config = config or Config.load()
        self.db_path = self.config.paths.data_dir / "feed.db"
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.prefs = Preferences(self.db_path)
        self._library = None

    @property
    def library(self):
        from sora_cli.library import Library

        if self._library is None:
            self._library = Library(self.config.paths.library_db)
        return self._library

    def close(self) -> None:
        pass

    def _videos(self) -> list:
        return [v for v in self.library.list(status="completed") if v.path]

    def _item(self, video: Any, remixes: int) -> dict[str, Any]:
        return {"id": video.id, "object": "feed.item", "author": self.config.get("handle") or "you",
                "caption": video.prompt, "prompt": video.prompt, "created_at": video.created_at,
                "published_at": None, "likes": 0, "remixes": remixes, "liked_by_me": False,
                "remixed_from_video_id": video.remixed_from_video_id, "seconds": video.seconds, "size": video.size,
                "model": video.model, "path": video.path, "thumbnail_path": video.thumbnail_path}

    def browse(self, steer: str | None = None, limit: int = 20, personalised: bool = True) -> dict[str, Any]:
        from collections import Counter

        from sora_cli.feed.browse import browse, load_encoder
        from sora_cli.feed.rank import FeedItem

        videos = self._videos()
        remixes = Counter(v.remixed_from_video_id for v in videos if v.remixed_from_video_id)
        by_id = {v.id: v for v in videos}
        items = [FeedItem(id=v.id, caption=v.prompt or "", author=None, created_at=float(v.created_at),
                          remixes=remixes[v.id]) for v in videos]
        now = time.time()
        ranked = browse(items, encoder=load_encoder() if items else None, now=now, prefs=self.prefs, steer=steer,
                        cache_dir=self.config.paths.cache_dir / "feed", limit=limit,
                        personalised=personalised) if items else []
        seen = self._count_seen(len(ranked))
        data = [{**self._item(by_id[r.item.id], remixes[r.item.id]), "score": round(r.score, 4), "why": r.why}
                for r in ranked]
        steering = []
        if steer and personalised:
            from sora_cli.feed.steer import parse

            steering = [f.to_dict() for f in parse(steer).facets]
        return {"object": "list", "data": data, "steering": steering, "remaining_today": None,
                "nudge": _nudge(seen)}

    def _count_seen(self, shown: int) -> int:
        """Items shown today (UTC), this one included."""
        day = time.strftime("%Y-%m-%d", time.gmtime())
        with closing(sqlite3.connect(self.db_path)) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS feed_browsed (day TEXT PRIMARY KEY, shown INTEGER NOT NULL)")
            db.execute("INSERT INTO feed_browsed VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET shown = shown + ?",
                       (day, shown, shown))
            return db.execute("SELECT shown FROM feed_browsed WHERE day = ?", (day,)).fetchone()[0]

    def item(self, video_id: str) -> dict[str, Any]:
        video = self.library.get(video_id)
        return self._item(video, len(self.library.children(video.id)))

    def save_steer(self, sentence: str) -> dict[str, Any]:
        from sora_cli.feed.steer import parse

        steering = parse(sentence)
        steer_id = self.prefs.add(steering, now=time.time())
        return {"id": steer_id, "facets": [f.to_dict() for f in steering.facets], "created_at": int(time.time())}

    def steers(self) -> list[dict[str, Any]]:
        return [s.to_dict() for s in self.prefs.show(now=time.time())]

    def reset_steers(self) -> int:
        return self.prefs.reset()

    def hide(self, video_id: str) -> dict[str, Any]:
        video = self.library.get(video_id)
        self.prefs.hide(video.id, now=time.time())
        return {"id": video.id, "hidden": True}

    def see_less(self, video_id: str) -> dict[str, Any]:
        video = self.library.get(video_id)
        self.prefs.see_less(video.id, video.prompt, now=time.time())
        return {"id": video.id, "see_less": True}

    def thumbnail(self, item: dict[str, Any], folder: Path) -> Path | None:
        path = item.get("thumbnail_path")
        return Path(path) if path and Path(path).is_file() else None

    def video_file(self, item: dict[str, Any], folder: Path) -> Path:
        return Path(item["path"])

    def server_only(self, what: str) -> None:
        raise UsageError(f"{what} needs a server: give --server URL (the local feed is your own library)")


class RemoteFeed:
    """A server's community feed, over /v1/feed and /v1/users."""

    kind = "server"

    def __init__(self, url: str, api_key: str, config: Config | None = None):
        from sora_cli.engines.remote import RemoteClient

        self.url, self.config = url, config or Config.load()
        self.client = RemoteClient(url, api_key)

    @classmethod
    def connect(cls, url: str, config: Config | None = None) -> RemoteFeed:
        from sora_cli.remote import api_key

        config = config or Config.load()
        return cls(url, api_key(url, config), config)

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return self.client.call(method, path, **kwargs)

    def browse(self, steer: str | None = None, limit: int = 20, personalised: bool = True) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "personalised": str(personalised).lower()}
        if steer:
            params["steer"] = steer
        return self._call("GET", "/v1/feed", params=params)

    def item(self, video_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/feed/{_feed_id(video_id)}")

    def save_steer(self, sentence: str) -> dict[str, Any]:
        return self._call("POST", "/v1/feed/steer", json={"sentence": sentence})

    def steers(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/feed/steer").get("data", [])

    def reset_steers(self) -> int:
        return int(self._call("DELETE", "/v1/feed/steer").get("reset", 0))

    def hide(self, video_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/feed/{_feed_id(video_id)}/hide")

    def see_less(self, video_id: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/feed/{_feed_id(video_id)}/see_less")

    def like(self, video_id: str, undo: bool = False) -> dict[str, Any]:
        return self._call("DELETE" if undo else "POST", f"/v1/feed/{_feed_id(video_id)}/like")

    def follow(self, name: str, undo: bool = False) -> dict[str, Any]:
        return self._call("DELETE" if undo else "POST", f"/v1/users/{name.lstrip('@')}/follow")

    def report(self, video_id: str, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/feed/{_feed_id(video_id)}/report", json={"reason": reason})

    def publish(self, video_id: str, caption: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/v1/feed/publish", json={"video_id": video_id, "caption": caption})

    def unpublish(self, video_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/feed/{_feed_id(video_id)}")

    def _download(self, video_id: str, target: Path, variant: str) -> Path:
        return self.client.download(video_id, target, variant, base="/v1/feed")

    def thumbnail(self, item: dict[str, Any], folder: Path) -> Path | None:
        from sora_cli.errors import SoraError

        try:
            return self._download(item["id"], folder / f"{item['id']}.jpg", "thumbnail")
        except SoraError:
            return None

    def video_file(self, item: dict[str, Any], folder: Path) -> Path:
        return self._download(item["id"], folder / f"{item['id']}.mp4", "video")

    def server_only(self, what: str) -> None:
        return None


def _feed_id(ref: str) -> str:
    return ref.removeprefix("feed:")


def _nudge(seen: int) -> str | None:
    if seen < LONG_BROWSE:
        return None
    return (f"{seen} videos browsed today — make one instead? "
            "`sora generate \"…\"`, or `sora remix feed:ID \"…\"` on one you liked")


def open_feed(server: str | None, config: Config | None = None) -> LocalFeed | RemoteFeed:
    from sora_cli.remote import server_url

    config = config or Config.load()
    url = server_url(server, config)
    return RemoteFeed.connect(url, config) if url else LocalFeed(config)
