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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_accounts, _m002_jobs, _m003_files, _m004_webhooks,
                                                          _m005_job_worker]


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
