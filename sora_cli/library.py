"""The local library: one SQLite file, one row per video, schema changed only by numbered migrations."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from sora_cli.errors import UsageError
from sora_cli.requests import Video


def _m001_videos(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE videos (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            progress INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            completed_at INTEGER,
            model TEXT NOT NULL,
            model_hash TEXT,
            prompt TEXT NOT NULL,
            negative_prompt TEXT,
            seed INTEGER,
            seconds TEXT,
            size TEXT,
            num_frames INTEGER,
            fps INTEGER,
            parameters TEXT NOT NULL DEFAULT '{}',
            parent_id TEXT REFERENCES videos(id) ON DELETE SET NULL,
            path TEXT,
            thumbnail_path TEXT,
            sha256 TEXT,
            error TEXT,
            timings TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    db.execute("CREATE INDEX videos_created ON videos(created_at)")


def _m002_provenance(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE videos ADD COLUMN watermark_id TEXT")
    db.execute("ALTER TABLE videos ADD COLUMN manifest_label TEXT")
    db.execute("CREATE INDEX videos_watermark ON videos(watermark_id)")


def _m003_lineage(db: sqlite3.Connection) -> None:
    # remix and extend look inputs up by their bytes, and lineage walks parents
    db.execute("CREATE INDEX videos_sha256 ON videos(sha256)")
    db.execute("CREATE INDEX videos_parent ON videos(parent_id)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_videos, _m002_provenance, _m003_lineage]
_JSON_COLUMNS = ("parameters", "timings", "error")


def watermark_key(content_id: int) -> str:
    """How a 64-bit watermark id is stored and shown: 16 hex digits."""
    return f"{content_id:016x}"


class Library:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def _migrate(self) -> None:
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode = WAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(db)
                db.execute(f"PRAGMA user_version = {number}")

    def schema_version(self) -> int:
        with closing(self._connect()) as db:
            return db.execute("PRAGMA user_version").fetchone()[0]

    def save(self, video: Video) -> None:
        row = {
            "id": video.id, "status": video.status, "progress": video.progress,
            "created_at": video.created_at, "completed_at": video.completed_at, "model": video.model,
            "model_hash": video.model_hash, "prompt": video.prompt, "negative_prompt": video.negative_prompt,
            "seed": video.seed, "seconds": video.seconds, "size": video.size, "num_frames": video.num_frames,
            "fps": video.fps, "parameters": json.dumps(video.parameters),
            "parent_id": video.remixed_from_video_id, "path": video.path, "thumbnail_path": video.thumbnail_path,
            "sha256": video.sha256, "error": json.dumps(video.error) if video.error else None,
            "timings": json.dumps(video.timings), "watermark_id": video.watermark_id,
            "manifest_label": video.manifest_label,
        }
        columns = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with closing(self._connect()) as db, db:
            db.execute(f"INSERT OR REPLACE INTO videos ({columns}) VALUES ({marks})", row)

    def get(self, video_id: str) -> Video:
        if video_id == "@last":
            rows = list(self.list(limit=1))
            if not rows:
                raise UsageError("the library is empty: no @last video")
            return rows[0]
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM videos WHERE id = ?", (video_id,)).fetchone()
            if row is None:
                row = self._by_prefix(db, video_id)
        return _to_video(row)

    def _by_prefix(self, db: sqlite3.Connection, prefix: str) -> sqlite3.Row:
        like = prefix.replace("%", "").replace("_", r"\_")
        rows = db.execute(
            r"SELECT * FROM videos WHERE id LIKE ? ESCAPE '\' OR id LIKE ? ESCAPE '\' LIMIT 2",
            (like + "%", "video\\_" + like + "%"),
        ).fetchall()
        if len(rows) != 1:
            raise UsageError(f"no video {prefix!r} in the library" if not rows
                             else f"{prefix!r} matches several videos; give more of the id")
        return rows[0]

    def list(self, limit: int | None = None, status: str | None = None) -> Iterator[Video]:
        query = "SELECT * FROM videos"
        args: list[Any] = []
        if status:
            query += " WHERE status = ?"
            args.append(status)
        query += " ORDER BY created_at DESC, rowid DESC"
        if limit:
            query += " LIMIT ?"
            args.append(limit)
        with closing(self._connect()) as db:
            rows = db.execute(query, args).fetchall()
        return (_to_video(r) for r in rows)

    def by_watermark(self, content_id: int) -> Video | None:
        """The video whose invisible mark carries this id (the soft-binding lookup)."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM videos WHERE watermark_id = ?", (watermark_key(content_id),)).fetchone()
        return _to_video(row) if row else None

    def by_sha256(self, sha256: str) -> Video | None:
        """The completed video whose file has these bytes (a copy of it anywhere on disk)."""
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM videos WHERE sha256 = ? AND status = 'completed' "
                             "ORDER BY created_at DESC LIMIT 1", (sha256,)).fetchone()
        return _to_video(row) if row else None

    def children(self, video_id: str) -> list[Video]:
        """Videos remixed from or extending this one."""
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM videos WHERE parent_id = ? ORDER BY created_at", (video_id,)).fetchall()
        return [_to_video(r) for r in rows]

    def delete(self, video_id: str) -> Video:
        video = self.get(video_id)
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM videos WHERE id = ?", (video.id,))
        return video


def _to_video(row: sqlite3.Row) -> Video:
    data = dict(row)
    for key in _JSON_COLUMNS:
        if data.get(key):
            data[key] = json.loads(data[key])
    data["remixed_from_video_id"] = data.pop("parent_id")
    if not data.get("parameters"):
        data["parameters"] = {}
    if not data.get("timings"):
        data["timings"] = {}
    return Video(**data)
