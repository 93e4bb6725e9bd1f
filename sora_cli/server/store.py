"""The server's state in one SQLite file (WAL): users, API key hashes, jobs, uploads, webhooks, deliveries.

The schema changes only by numbered migrations (PRAGMA user_version), as in the library. The jobs table
is the persistent queue: a job is claimed by one atomic UPDATE, so a restart finds every job where it was.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ACTIVE = ("queued", "in_progress")
TERMINAL = ("completed", "failed", "cancelled")


def _m001_accounts(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL DEFAULT 'user',
                  disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL)""")
    db.execute("""CREATE TABLE api_keys (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
                  hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER)""")


def _m002_jobs(db: sqlite3.Connection) -> None:
    # seq orders jobs (created_at has one-second resolution) and is the cursor of list paging
    db.execute("""CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL REFERENCES users(id), kind TEXT NOT NULL, status TEXT NOT NULL,
        progress INTEGER NOT NULL DEFAULT 0, request TEXT NOT NULL, model TEXT NOT NULL, prompt TEXT NOT NULL,
        seconds TEXT NOT NULL, size TEXT NOT NULL, seed INTEGER, remixed_from TEXT, input_path TEXT,
        error TEXT, record TEXT NOT NULL DEFAULT '{}', library_id TEXT, output TEXT, sha256 TEXT, bytes INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL, started_at INTEGER, completed_at INTEGER)""")
    db.execute("CREATE INDEX jobs_user ON jobs(user_id, seq)")
    db.execute("CREATE INDEX jobs_status ON jobs(status, seq)")


def _m003_files(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE files (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
                  purpose TEXT NOT NULL, name TEXT NOT NULL, content_type TEXT NOT NULL, bytes INTEGER NOT NULL,
                  path TEXT NOT NULL, created_at INTEGER NOT NULL)""")


def _m004_webhooks(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE webhooks (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
                  name TEXT NOT NULL, url TEXT NOT NULL, secret TEXT NOT NULL, event_types TEXT NOT NULL,
                  created_at INTEGER NOT NULL)""")
    db.execute("""CREATE TABLE deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
                  webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE, payload TEXT NOT NULL,
                  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0,
                  next_at REAL NOT NULL, last_error TEXT, delivered_at INTEGER)""")
    db.execute("CREATE INDEX deliveries_due ON deliveries(status, next_at)")


def _m005_job_worker(db: sqlite3.Connection) -> None:
    # which worker process runs a job, so a worker that dies alone (not the server) gives its job back
    db.execute("ALTER TABLE jobs ADD COLUMN worker INTEGER")


def _m006_feed(db: sqlite3.Connection) -> None:
    # the community feed: a published video is a row here (gone with its job); likes go with the item
    db.execute("""CREATE TABLE feed_items (video_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
                  user_id TEXT NOT NULL REFERENCES users(id), caption TEXT NOT NULL, published_at REAL NOT NULL,
                  vector BLOB)""")
    db.execute("""CREATE TABLE feed_likes (video_id TEXT NOT NULL REFERENCES feed_items(video_id) ON DELETE CASCADE,
                  user_id TEXT NOT NULL REFERENCES users(id), created_at INTEGER NOT NULL,
                  PRIMARY KEY (video_id, user_id)) WITHOUT ROWID""")
    db.execute("""CREATE TABLE feed_hidden (user_id TEXT NOT NULL REFERENCES users(id), video_id TEXT NOT NULL,
                  created_at REAL NOT NULL, PRIMARY KEY (user_id, video_id)) WITHOUT ROWID""")
    db.execute("""CREATE TABLE feed_see_less (user_id TEXT NOT NULL REFERENCES users(id), video_id TEXT NOT NULL,
                  caption TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (user_id, video_id)) WITHOUT ROWID""")
    db.execute("""CREATE TABLE feed_steers (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id),
                  created_at REAL NOT NULL, sentence TEXT NOT NULL, facets TEXT NOT NULL, weight REAL NOT NULL)""")
    db.execute("CREATE INDEX feed_steers_user ON feed_steers(user_id)")
    # reports outlive the item (an admin may need them after the author unpublished): no foreign key on the video
    db.execute("""CREATE TABLE feed_reports (id TEXT PRIMARY KEY, video_id TEXT NOT NULL,
                  user_id TEXT NOT NULL REFERENCES users(id), reason TEXT NOT NULL, created_at INTEGER NOT NULL)""")
    db.execute("""CREATE TABLE follows (follower_id TEXT NOT NULL REFERENCES users(id),
                  followee_id TEXT NOT NULL REFERENCES users(id), created_at INTEGER NOT NULL,
                  PRIMARY KEY (follower_id, followee_id)) WITHOUT ROWID""")
    db.execute("CREATE INDEX follows_followee ON follows(followee_id)")
    db.execute("""CREATE TABLE feed_views (user_id TEXT NOT NULL REFERENCES users(id), day TEXT NOT NULL,
                  shown INTEGER NOT NULL, PRIMARY KEY (user_id, day)) WITHOUT ROWID""")
    db.execute("""CREATE TABLE user_flags (user_id TEXT PRIMARY KEY REFERENCES users(id),
                  minor INTEGER NOT NULL DEFAULT 0, daily_feed_limit INTEGER,
                  personalised INTEGER NOT NULL DEFAULT 1)""")
    db.execute("CREATE INDEX jobs_remixed ON jobs(remixed_from) WHERE remixed_from IS NOT NULL")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_accounts, _m002_jobs, _m003_files, _m004_webhooks,
                                                          _m005_job_worker, _m006_feed]


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


class Store:
    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db(write=False) as db:
            db.execute("PRAGMA journal_mode = WAL")  # outside a transaction; it sticks to the file
        with self._db() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def _db(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """This thread's connection (kept open: a poll costs one indexed read, not a connect). Writes take the
        write lock up front (BEGIN IMMEDIATE), so a read-then-write never fails half-way; reads run beside
        them (WAL) in autocommit mode, each seeing the latest commit."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a killed process loses no commit
            self._local.db = db
        if not write:
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _one(self, query: str, args: tuple | dict = (), write: bool = False) -> dict | None:
        with self._db(write) as db:
            rows = db.execute(query, args).fetchall()  # drained before COMMIT (UPDATE ... RETURNING)
        return dict(rows[0]) if rows else None

    def _all(self, query: str, args: tuple | dict = ()) -> list[dict]:
        with self._db(write=False) as db:
            return [dict(r) for r in db.execute(query, args).fetchall()]

    def _run(self, query: str, args: tuple | dict = ()) -> int:
        with self._db() as db:
            return db.execute(query, args).rowcount

    # -- users and keys ----------------------------------------------------------------------------

    def add_user(self, name: str, role: str = "user") -> dict:
        user = {"id": new_id("user_"), "name": name, "role": role, "disabled": 0, "created_at": int(time.time())}
        with self._db() as db:
            db.execute("INSERT INTO users VALUES (:id, :name, :role, :disabled, :created_at)", user)
        return user

    def user(self, ref: str) -> dict | None:
        return self._one("SELECT * FROM users WHERE id = ? OR name = ?", (ref, ref))

    def users(self) -> list[dict]:
        return self._all("SELECT u.*, (SELECT COUNT(*) FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at "
                         "IS NULL) AS keys FROM users u ORDER BY created_at, name")

    def set_disabled(self, user_id: str, disabled: bool) -> None:
        self._run("UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user_id))

    def add_key(self, user_id: str, digest: str, hint: str) -> dict:
        key = {"id": new_id("key_"), "user_id": user_id, "hash": digest, "hint": hint,
               "created_at": int(time.time()), "revoked_at": None}
        with self._db() as db:
            db.execute("INSERT INTO api_keys VALUES (:id, :user_id, :hash, :hint, :created_at, :revoked_at)", key)
        return key

    def keys(self, user_id: str | None = None) -> list[dict]:
        where, args = ("WHERE user_id = ?", (user_id,)) if user_id else ("", ())
        return self._all(f"SELECT id, user_id, hint, created_at, revoked_at FROM api_keys {where} ORDER BY created_at",
                         args)

    def revoke_key(self, key_id: str) -> bool:
        return self._run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                         (int(time.time()), key_id)) == 1

    def user_for_key(self, digest: str) -> dict | None:
        return self._one("SELECT u.* FROM api_keys k JOIN users u ON u.id = k.user_id "
                         "WHERE k.hash = ? AND k.revoked_at IS NULL AND u.disabled = 0", (digest,))

    # -- jobs (the queue) ----------------------------------------------------------------------------

    def add_job(self, job: dict, max_active: int) -> bool:
        """Insert a queued job unless `max_active` jobs are already queued or running (one atomic statement)."""
        columns = ", ".join(job)
        values = ", ".join(f":{k}" for k in job)
        with self._db() as db:
            cursor = db.execute(f"INSERT INTO jobs ({columns}) SELECT {values} WHERE (SELECT COUNT(*) FROM jobs "
                                f"WHERE status IN ('queued', 'in_progress')) < :max_active",
                                {**job, "max_active": max_active})
            return cursor.rowcount == 1

    def job(self, job_id: str, user_id: str | None = None) -> dict | None:
        if user_id is None:
            return self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return self._one("SELECT * FROM jobs WHERE id = ? AND user_id = ?", (job_id, user_id))

    def jobs(self, user_id: str, *, after: str | None, limit: int, order: str) -> tuple[list[dict], bool] | None:
        """A page of a user's jobs after the job `after` (None when that cursor is not theirs)."""
        op, direction = (">", "ASC") if order == "asc" else ("<", "DESC")
        cursor = None
        if after:
            found = self._one("SELECT seq FROM jobs WHERE id = ? AND user_id = ?", (after, user_id))
            if found is None:
                return None
            cursor = found["seq"]
        where = f"AND seq {op} :cursor" if cursor is not None else ""
        rows = self._all(f"SELECT * FROM jobs WHERE user_id = :user {where} ORDER BY seq {direction} LIMIT :n",
                         {"user": user_id, "cursor": cursor, "n": limit + 1})
        return rows[:limit], len(rows) > limit

    def active_count(self) -> int:
        row = self._one("SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'in_progress')")
        return row["n"] if row else 0

    def claim(self, worker: int) -> dict | None:
        """The oldest queued job, now in_progress: one UPDATE, so two workers never take the same job."""
        return self._one(
            "UPDATE jobs SET status = 'in_progress', started_at = :now, attempts = attempts + 1, progress = 0, "
            "worker = :worker WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1) "
            "RETURNING *", {"now": int(time.time()), "worker": worker}, write=True)

    def update(self, job_id: str, only_if: str | None = None, attempt: int | None = None, **fields: Any) -> bool:
        """Set fields of a job (JSON-encoding dicts), optionally only while it has status `only_if` and is in its
        `attempt`-th run: a worker outlived by a restart can then change nothing of the job's next run."""
        values = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in fields.items()}
        sets = ", ".join(f"{k} = :{k}" for k in values)
        guard = (" AND status = :only_if" if only_if else "") + (" AND attempts = :attempt" if attempt else "")
        return self._run(f"UPDATE jobs SET {sets} WHERE id = :id{guard}",
                         {**values, "id": job_id, "only_if": only_if, "attempt": attempt}) == 1

    def has_queued(self) -> bool:
        return self._one("SELECT 1 AS x FROM jobs WHERE status = 'queued' LIMIT 1") is not None

    def cancel_requested(self, job_id: str) -> bool:
        row = self._one("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,))
        return bool(row and row["cancel_requested"])

    def delete_job(self, job_id: str) -> bool:
        """Delete a job that no worker is running (False if one claimed it meanwhile)."""
        return self._run("DELETE FROM jobs WHERE id = ? AND status != 'in_progress'", (job_id,)) == 1

    def interrupted(self, worker: int | None = None) -> list[dict]:
        """Jobs in_progress (of one worker process, if given)."""
        if worker is None:
            return self._all("SELECT * FROM jobs WHERE status = 'in_progress' ORDER BY seq")
        return self._all("SELECT * FROM jobs WHERE status = 'in_progress' AND worker = ? ORDER BY seq", (worker,))

    def completed_outputs(self) -> list[dict]:
        return self._all("SELECT id, output, bytes FROM jobs WHERE status = 'completed'")

    def average_seconds(self, recent: int = 20) -> float | None:
        row = self._one("SELECT AVG(completed_at - started_at) AS s FROM (SELECT * FROM jobs WHERE status = "
                        "'completed' AND started_at IS NOT NULL ORDER BY seq DESC LIMIT ?)", (recent,))
        return row["s"] if row and row["s"] is not None else None

    # -- files (uploads by the Files API and characters) -------------------------------------------------

    def add_file(self, row: dict) -> None:
        with self._db() as db:
            db.execute(f"INSERT INTO files ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row)

    def file(self, file_id: str, user_id: str, purpose: str | None = None) -> dict | None:
        extra, args = (" AND purpose = ?", (purpose,)) if purpose else ("", ())
        return self._one(f"SELECT * FROM files WHERE id = ? AND user_id = ?{extra}", (file_id, user_id, *args))

    def files(self, user_id: str, purpose: str) -> list[dict]:
        return self._all("SELECT * FROM files WHERE user_id = ? AND purpose = ? ORDER BY created_at",
                         (user_id, purpose))

    def delete_file(self, file_id: str) -> None:
        self._run("DELETE FROM files WHERE id = ?", (file_id,))

    # -- webhooks ------------------------------------------------------------------------------------------

    def add_webhook(self, row: dict) -> None:
        with self._db() as db:
            db.execute(f"INSERT INTO webhooks ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})", row)

    def webhooks(self, user_id: str) -> list[dict]:
        return self._all("SELECT * FROM webhooks WHERE user_id = ? ORDER BY created_at, id", (user_id,))

    def webhook(self, webhook_id: str, user_id: str) -> dict | None:
        return self._one("SELECT * FROM webhooks WHERE id = ? AND user_id = ?", (webhook_id, user_id))

    def delete_webhook(self, webhook_id: str) -> None:
        self._run("DELETE FROM webhooks WHERE id = ?", (webhook_id,))

    def add_delivery(self, event_id: str, webhook_id: str, payload: str) -> None:
        self._run("INSERT INTO deliveries (event_id, webhook_id, payload, next_at) VALUES (?, ?, ?, ?)",
                  (event_id, webhook_id, payload, time.time()))

    def due_deliveries(self, limit: int = 20) -> list[dict]:
        return self._all("SELECT d.*, w.url, w.secret FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id "
                         "WHERE d.status = 'pending' AND d.next_at <= ? ORDER BY d.next_at LIMIT ?",
                         (time.time(), limit))

    def deliveries(self, webhook_id: str) -> list[dict]:
        return self._all("SELECT * FROM deliveries WHERE webhook_id = ? ORDER BY seq", (webhook_id,))

    def delivery_result(self, seq: int, status: str, attempts: int, next_at: float, error: str | None) -> None:
        delivered = int(time.time()) if status == "delivered" else None
        self._run("UPDATE deliveries SET status = ?, attempts = ?, next_at = ?, last_error = ?, delivered_at = ? "
                  "WHERE seq = ?", (status, attempts, next_at, error, delivered, seq))

    # -- the feed --------------------------------------------------------------------------------------------------

    def publish(self, video_id: str, user_id: str, caption: str, now: float, vector: bytes | None) -> bool:
        """Publish a video (False when it already was: publishing is idempotent)."""
        return self._run("INSERT OR IGNORE INTO feed_items VALUES (?, ?, ?, ?, ?)",
                         (video_id, user_id, caption, now, vector)) == 1

    def unpublish(self, video_id: str) -> bool:
        return self._run("DELETE FROM feed_items WHERE video_id = ?", (video_id,)) == 1

    def feed_item(self, video_id: str, viewer_id: str) -> dict | None:
        """A published video with its job's fields, author, likes, remixes and whether `viewer_id` liked it."""
        rows = self.feed_details([video_id], viewer_id)
        return rows[0] if rows else None

    def feed_details(self, ids: list[str], viewer_id: str) -> list[dict]:
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        rows = self._all(
            f"SELECT j.*, f.caption, f.published_at, f.user_id AS author_id, u.name AS author, "
            f"(SELECT COUNT(*) FROM feed_likes l WHERE l.video_id = f.video_id) AS likes, "
            f"(SELECT COUNT(*) FROM jobs r WHERE r.remixed_from = f.video_id AND r.status NOT IN ('failed', "
            f"'cancelled')) AS remixes, EXISTS (SELECT 1 FROM feed_likes l WHERE l.video_id = f.video_id AND "
            f"l.user_id = ?) AS liked_by_me FROM feed_items f JOIN jobs j ON j.id = f.video_id "
            f"JOIN users u ON u.id = f.user_id WHERE f.video_id IN ({marks})", (viewer_id, *ids))
        order = {v: i for i, v in enumerate(ids)}
        return sorted(rows, key=lambda r: order[r["id"]])

    def feed_candidates(self, viewer_id: str) -> list[tuple]:
        """(id, author, published_at, likes, remixes) of every published video `viewer_id` has not hidden, by
        enabled authors. A browse of 10,000 reads them all: five plain queries (no sqlite3.Row, no captions)
        joined here cost a third of one query with grouped subqueries."""
        with self._db(write=False) as db:
            cursor = db.cursor()
            cursor.row_factory = None
            authors = dict(cursor.execute("SELECT id, name FROM users WHERE disabled = 0").fetchall())
            likes = dict(cursor.execute("SELECT video_id, COUNT(*) FROM feed_likes GROUP BY video_id").fetchall())
            remixes = dict(cursor.execute("SELECT remixed_from, COUNT(*) FROM jobs WHERE remixed_from IS NOT NULL "
                                          "AND status NOT IN ('failed', 'cancelled') GROUP BY remixed_from").fetchall())
            hidden = {r[0] for r in cursor.execute("SELECT video_id FROM feed_hidden WHERE user_id = ?", (viewer_id,))}
            rows = cursor.execute("SELECT video_id, user_id, published_at FROM feed_items").fetchall()
        return [(v, authors[u], t, likes.get(v, 0), remixes.get(v, 0)) for v, u, t in rows
                if u in authors and v not in hidden]

    def feed_vectors(self, ids: list[str]) -> dict[str, tuple[bytes | None, str]]:
        """id -> (stored caption vector or None, caption)."""
        out: dict[str, tuple[bytes | None, str]] = {}
        for start in range(0, len(ids), 500):  # SQLite's limit on bound parameters
            chunk = ids[start:start + 500]
            rows = self._all(f"SELECT video_id, vector, caption FROM feed_items WHERE video_id IN "
                             f"({', '.join('?' * len(chunk))})", chunk)
            out.update((r["video_id"], (r["vector"], r["caption"])) for r in rows)
        return out

    def set_feed_vectors(self, vectors: dict[str, bytes]) -> None:
        with self._db() as db:
            db.executemany("UPDATE feed_items SET vector = ? WHERE video_id = ?", [(v, k) for k, v in vectors.items()])

    def like(self, video_id: str, user_id: str, liked: bool) -> int:
        """Like or unlike (both idempotent); the item's likes after."""
        with self._db() as db:
            if liked:
                db.execute("INSERT OR IGNORE INTO feed_likes VALUES (?, ?, ?)", (video_id, user_id, int(time.time())))
            else:
                db.execute("DELETE FROM feed_likes WHERE video_id = ? AND user_id = ?", (video_id, user_id))
            return db.execute("SELECT COUNT(*) FROM feed_likes WHERE video_id = ?", (video_id,)).fetchone()[0]

    def hide(self, user_id: str, video_id: str, now: float) -> None:
        self._run("INSERT OR IGNORE INTO feed_hidden VALUES (?, ?, ?)", (user_id, video_id, now))

    def see_less(self, user_id: str, video_id: str, caption: str, now: float) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO feed_see_less VALUES (?, ?, ?, ?)", (user_id, video_id, caption, now))
            db.execute("INSERT OR IGNORE INTO feed_hidden VALUES (?, ?, ?)", (user_id, video_id, now))

    def see_less_rows(self, user_id: str) -> list[dict]:
        return self._all("SELECT video_id, caption, created_at FROM feed_see_less WHERE user_id = ? "
                         "ORDER BY created_at DESC", (user_id,))

    def add_steer(self, user_id: str, sentence: str, facets: str, now: float, weight: float = 1.0) -> int:
        with self._db() as db:
            return int(db.execute("INSERT INTO feed_steers (user_id, created_at, sentence, facets, weight) "
                                  "VALUES (?, ?, ?, ?, ?)", (user_id, now, sentence, facets, weight)).lastrowid or 0)

    def steers(self, user_id: str) -> list[dict]:
        return self._all("SELECT * FROM feed_steers WHERE user_id = ? ORDER BY created_at DESC, id DESC", (user_id,))

    def reset_steers(self, user_id: str) -> int:
        """Forget saved steers and "see less" (hides stay: they are explicit); how many rows went."""
        with self._db() as db:
            return (db.execute("DELETE FROM feed_steers WHERE user_id = ?", (user_id,)).rowcount
                    + db.execute("DELETE FROM feed_see_less WHERE user_id = ?", (user_id,)).rowcount)

    def add_report(self, video_id: str, user_id: str, reason: str) -> dict:
        row = {"id": new_id("report_"), "video_id": video_id, "user_id": user_id, "reason": reason,
               "created_at": int(time.time())}
        self._run("INSERT INTO feed_reports VALUES (:id, :video_id, :user_id, :reason, :created_at)", row)
        return row

    def reports(self) -> list[dict]:
        return self._all("SELECT r.*, u.name AS reporter, a.name AS author, f.caption FROM feed_reports r "
                         "JOIN users u ON u.id = r.user_id LEFT JOIN jobs j ON j.id = r.video_id "
                         "LEFT JOIN users a ON a.id = j.user_id LEFT JOIN feed_items f ON f.video_id = r.video_id "
                         "ORDER BY r.created_at DESC, r.id")

    def count_shown(self, user_id: str, day: str, shown: int) -> int:
        """Add `shown` to the items served to a user on `day` (UTC); the day's total after."""
        with self._db() as db:
            db.execute("INSERT INTO feed_views VALUES (?, ?, ?) ON CONFLICT(user_id, day) DO UPDATE SET "
                       "shown = shown + excluded.shown", (user_id, day, shown))
            row = db.execute("SELECT shown FROM feed_views WHERE user_id = ? AND day = ?", (user_id, day)).fetchone()
            return int(row[0])

    # -- follows and user flags ----------------------------------------------------------------------------------

    def follow(self, follower_id: str, followee_id: str, following: bool) -> None:
        if following:
            self._run("INSERT OR IGNORE INTO follows VALUES (?, ?, ?)", (follower_id, followee_id, int(time.time())))
        else:
            self._run("DELETE FROM follows WHERE follower_id = ? AND followee_id = ?", (follower_id, followee_id))

    def follows(self, follower_id: str, followee_id: str) -> bool:
        return self._one("SELECT 1 AS x FROM follows WHERE follower_id = ? AND followee_id = ?",
                         (follower_id, followee_id)) is not None

    def follows_by_name(self, follower: str, followee: str) -> bool:
        """Does the user named `follower` follow the one named `followee` (names compared case-insensitively)?"""
        return self._one("SELECT 1 AS x FROM follows f JOIN users a ON a.id = f.follower_id JOIN users b ON "
                         "b.id = f.followee_id WHERE lower(a.name) = lower(?) AND lower(b.name) = lower(?)",
                         (follower, followee)) is not None

    def following_names(self, user_id: str) -> set[str]:
        return {r["name"] for r in self._all("SELECT u.name FROM follows f JOIN users u ON u.id = f.followee_id "
                                             "WHERE f.follower_id = ?", (user_id,))}

    def follow_counts(self, user_id: str) -> tuple[int, int]:
        """(followers, following)."""
        row = self._one("SELECT (SELECT COUNT(*) FROM follows WHERE followee_id = :u) AS a, "
                        "(SELECT COUNT(*) FROM follows WHERE follower_id = :u) AS b", {"u": user_id})
        return (row["a"], row["b"]) if row else (0, 0)

    def flags(self, user_id: str) -> dict:
        """A user's minor / daily feed limit / personalised settings (defaults when never set)."""
        row = self._one("SELECT minor, daily_feed_limit, personalised FROM user_flags WHERE user_id = ?", (user_id,))
        row = row or {"minor": 0, "daily_feed_limit": None, "personalised": 1}
        return {"minor": bool(row["minor"]), "daily_feed_limit": row["daily_feed_limit"],
                "personalised": bool(row["personalised"])}

    def set_flags(self, user_id: str, minor: bool, daily_feed_limit: int | None, personalised: bool) -> None:
        self._run("INSERT OR REPLACE INTO user_flags VALUES (?, ?, ?, ?)",
                  (user_id, int(minor), daily_feed_limit, int(personalised)))

    def jobs_mentioning(self, text: str) -> list[dict]:
        """Every job whose prompt, request or record contains `text` (a pre-filter: callers check properly)."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._all("SELECT j.*, u.name AS author, EXISTS (SELECT 1 FROM feed_items f WHERE f.video_id = j.id) "
                         "AS published FROM jobs j JOIN users u ON u.id = j.user_id WHERE j.prompt LIKE :p ESCAPE '\\' "
                         "OR j.request LIKE :p ESCAPE '\\' OR j.record LIKE :p ESCAPE '\\' ORDER BY j.seq",
                         {"p": pattern})
