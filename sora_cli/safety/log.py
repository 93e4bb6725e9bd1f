"""The safety log: one SQLite file (`safety.db` in the data folder), one row per refusal, rephrase request,
admin override or blocked video. It keeps the prompt's sha256, and the prompt itself only when the policy's
`log_prompts` says so. Schema changed only by numbered migrations.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any


def _m001_events(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            kind TEXT NOT NULL,           -- prompt | frames | input
            verdict TEXT NOT NULL,        -- refuse | rephrase | allow (allowed through an admin override) | block
            category TEXT,
            layer TEXT,
            triggers TEXT NOT NULL DEFAULT '[]',
            source TEXT NOT NULL,
            user TEXT,
            prompt_sha256 TEXT,
            prompt TEXT,
            details TEXT NOT NULL DEFAULT '{}',
            policy TEXT
        )
        """
    )
    db.execute("CREATE INDEX events_time ON events(time)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m001_events]


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SafetyLog:
    def __init__(self, path: Path):
        self.path = path
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def _migrate(self) -> None:
        if self._ready:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, step in enumerate(MIGRATIONS[version:], version + 1):
                step(db)
                db.execute(f"PRAGMA user_version = {number}")
        self._ready = True

    def add(self, *, kind: str, verdict: str, source: str, category: str | None = None, layer: str | None = None,
            triggers: tuple[str, ...] | list[str] = (), user: str | None = None, prompt: str | None = None,
            store_prompt: bool = False, details: dict[str, Any] | None = None, policy: str | None = None) -> int:
        self._migrate()
        with closing(self._connect()) as db, db:
            cur = db.execute(
                "INSERT INTO events (time, kind, verdict, category, layer, triggers, source, user, prompt_sha256,"
                " prompt, details, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), kind, verdict, category, layer, json.dumps(list(triggers), ensure_ascii=False), source,
                 user, sha256_text(prompt) if prompt is not None else None, prompt if store_prompt else None,
                 json.dumps(details or {}, ensure_ascii=False, default=str), policy),
            )
            return int(cur.lastrowid or 0)

    def record(self, decision: Any, prompt: str, context: Any, *, store_prompt: bool = False) -> int:
        """Log a prompt Decision (see moderate.Decision) for the requester in `context`."""
        details = {k: v for k, v in (("score", decision.score), ("margin", decision.margin),
                                     ("nearest", decision.nearest), ("reason", decision.reason),
                                     ("overridden", list(decision.overridden))) if v}
        return self.add(kind="prompt", verdict=decision.verdict, source=context.source, category=decision.category,
                        layer=decision.layer, triggers=decision.triggers, user=context.user, prompt=prompt,
                        store_prompt=store_prompt, details=details, policy=decision.policy)

    def record_pictures(self, report: Any, context: Any, *, kind: str = "frames", policy: str | None = None) -> int:
        """Log a blocked FrameReport (kind "frames") or a refused InputFaceReport (kind "input")."""
        nudity = bool(getattr(report, "nudity", ()))
        return self.add(kind=kind, verdict="block" if kind == "frames" else "refuse", source=context.source,
                        category="nudity" if nudity else "cameo_consent", layer="frames", user=context.user,
                        details=report.to_dict(), policy=policy)

    def events(self, limit: int = 100) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        self._migrate()
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM events ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) | {"triggers": json.loads(r["triggers"]), "details": json.loads(r["details"])} for r in rows]
