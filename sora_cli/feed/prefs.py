"""Saved feed preferences: steers that fade over days, "see less like this", and hidden videos.

    prefs = Preferences(paths.data_dir / "feed.db")
    prefs.add(parse("more space, no horror"), now=time.time())     # `sora feed steer "..."`
    prefs.see_less("vid_123", "a zombie horde ...", now=...)        # "see less like this"
    facets = prefs.facets(now)                                      # everything, decayed, for rank(steering=...)

A saved steer's weight halves every `half_life_days` (3 by default): a mood from last week should not rule today's
feed, and a user who keeps asking for space keeps it alive by asking again (several saved steers simply add).
Below 0.05 a steer stops counting; `prune` deletes those. A `no` facet hides matching videos only while its weight
is >= 0.5 (one half-life), then merely buries them. "See less like this" is a `fewer` facet whose topic is the
video's caption (its vector is then the caption's cached vector) and decays more slowly (14 days): it is a
judgement about a kind of video, not a mood. Hides never decay.

The tables live in the SQLite file the caller names (the library's file is fine: these tables are prefixed
`feed_` and versioned in their own `feed_schema` table, not `PRAGMA user_version`, which the library owns).
Every method takes `now` (Unix seconds) explicitly, so tests and benches control time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sora_cli.feed.steer import Facet, Steering, facets_from_json

HALF_LIFE_DAYS = 3.0
SEE_LESS_HALF_LIFE_DAYS = 14.0
MIN_WEIGHT = 0.05
DAY = 86400.0


def _m001(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE feed_preferences (id INTEGER PRIMARY KEY, created_at REAL NOT NULL,
                  sentence TEXT NOT NULL, facets TEXT NOT NULL, weight REAL NOT NULL DEFAULT 1.0)""")
    db.execute("""CREATE TABLE feed_see_less (video_id TEXT PRIMARY KEY, caption TEXT NOT NULL,
                  created_at REAL NOT NULL)""")
    db.execute("CREATE TABLE feed_hidden (video_id TEXT PRIMARY KEY, created_at REAL NOT NULL)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001]


@dataclass(frozen=True)
class SavedSteer:
    id: int
    created_at: float
    sentence: str
    facets: tuple[Facet, ...]  # weights as saved (before decay)
    weight: float  # the decayed weight now

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "created_at": self.created_at, "sentence": self.sentence,
                "facets": [f.to_dict() for f in self.facets], "weight": round(self.weight, 4)}


def decay(age_seconds: float, half_life_days: float) -> float:
    """1.0 now, 0.5 after one half-life; a steer saved in the future (clock skew) counts as new."""
    return 0.5 ** (max(age_seconds, 0.0) / (half_life_days * DAY))


class Preferences:
    def __init__(self, path: Path, half_life_days: float = HALF_LIFE_DAYS,
                 see_less_half_life_days: float = SEE_LESS_HALF_LIFE_DAYS):
        if half_life_days <= 0 or see_less_half_life_days <= 0:
            raise ValueError("half-lives must be positive")
        self.path = path
        self.half_life_days = half_life_days
        self.see_less_half_life_days = see_less_half_life_days
        path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def _migrate(self) -> None:
        with closing(self._connect()) as db, db:
            db.execute("CREATE TABLE IF NOT EXISTS feed_schema (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM feed_schema").fetchone()
            version = row[0] or 0
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                db.execute("INSERT INTO feed_schema (version) VALUES (?)", (number,))

    # -- saved steers ------------------------------------------------------------------------------------------------
    def add(self, steering: Steering, *, now: float, weight: float = 1.0) -> int:
        """Save a steer (`sora feed steer "..."`); returns its id."""
        with closing(self._connect()) as db, db:
            cur = db.execute("INSERT INTO feed_preferences (created_at, sentence, facets, weight) VALUES (?,?,?,?)",
                             (now, steering.sentence, steering.to_json(), weight))
            return int(cur.lastrowid or 0)

    def show(self, *, now: float) -> list[SavedSteer]:
        """Every saved steer, newest first, with its weight now (including ones that no longer count)."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT id, created_at, sentence, facets, weight FROM feed_preferences "
                              "ORDER BY created_at DESC, id DESC").fetchall()
        return [SavedSteer(i, t, s, facets_from_json(f), w * decay(now - t, self.half_life_days))
                for i, t, s, f, w in rows]

    def reset(self) -> int:
        """Forget every saved steer and "see less" (hides stay: they are explicit); returns how many were removed."""
        with closing(self._connect()) as db, db:
            a = db.execute("DELETE FROM feed_preferences").rowcount
            b = db.execute("DELETE FROM feed_see_less").rowcount
        return a + b

    def remove(self, steer_id: int) -> bool:
        with closing(self._connect()) as db, db:
            return db.execute("DELETE FROM feed_preferences WHERE id = ?", (steer_id,)).rowcount > 0

    def prune(self, *, now: float) -> int:
        """Delete saved steers whose weight has decayed below MIN_WEIGHT; returns how many."""
        gone = [s.id for s in self.show(now=now) if s.weight < MIN_WEIGHT]
        with closing(self._connect()) as db, db:
            db.executemany("DELETE FROM feed_preferences WHERE id = ?", [(i,) for i in gone])
        return len(gone)

    # -- see less, hide ----------------------------------------------------------------------------------------------
    def see_less(self, video_id: str, caption: str, *, now: float) -> None:
        """"See less like this": videos like this one's caption are pushed down (and this one is hidden)."""
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR REPLACE INTO feed_see_less (video_id, caption, created_at) VALUES (?,?,?)",
                       (video_id, caption, now))
            db.execute("INSERT OR IGNORE INTO feed_hidden (video_id, created_at) VALUES (?,?)", (video_id, now))

    def hide(self, video_id: str, *, now: float) -> None:
        with closing(self._connect()) as db, db:
            db.execute("INSERT OR IGNORE INTO feed_hidden (video_id, created_at) VALUES (?,?)", (video_id, now))

    def unhide(self, video_id: str) -> bool:
        with closing(self._connect()) as db, db:
            return db.execute("DELETE FROM feed_hidden WHERE video_id = ?", (video_id,)).rowcount > 0

    def hidden(self) -> set[str]:
        with closing(self._connect()) as db:
            return {r[0] for r in db.execute("SELECT video_id FROM feed_hidden")}

    # -- for ranking ---------------------------------------------------------------------------------------------------
    def facets(self, *, now: float) -> tuple[Facet, ...]:
        """Every facet that still counts, weights multiplied by their decay: saved steers, then "see less"."""
        out: list[Facet] = []
        for saved in self.show(now=now):
            if saved.weight >= MIN_WEIGHT:
                out += [Facet(f.kind, f.topic, f.weight * saved.weight) for f in saved.facets]
        with closing(self._connect()) as db:
            rows = db.execute("SELECT caption, created_at FROM feed_see_less ORDER BY created_at DESC").fetchall()
        for caption, t in rows:
            w = decay(now - t, self.see_less_half_life_days)
            if w >= MIN_WEIGHT:
                out.append(Facet("fewer", caption, w))
        return tuple(out)

    def export(self, *, now: float) -> str:
        """`sora feed show --json`: saved steers with their weights now, see-less captions and hidden ids."""
        with closing(self._connect()) as db:
            less = db.execute("SELECT video_id, caption, created_at FROM feed_see_less").fetchall()
        return json.dumps({"steers": [s.to_dict() for s in self.show(now=now)],
                           "see_less": [{"video_id": v, "caption": c, "created_at": t,
                                         "weight": round(decay(now - t, self.see_less_half_life_days), 4)}
                                        for v, c, t in less],
                           "hidden": sorted(self.hidden())})
