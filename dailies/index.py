"""The gallery index: SQLite in the data folder with full-text search over prompts.

It is a view of the dataset and can always be rebuilt from it. Ids sort by creation time, so
"newest first" is a walk down the primary key and the cursor is the last id seen: a page costs
the same at 100 rows or 100,000.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    video_path TEXT NOT NULL,
    row TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_backend ON generations (backend, id);
CREATE INDEX IF NOT EXISTS generations_model ON generations (model, id);
CREATE VIRTUAL TABLE IF NOT EXISTS prompts USING fts5 (
    prompt, content='generations', content_rowid='rowid', tokenize='unicode61'
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
PAGE_MAX = 100
_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(q: str) -> str | None:
    """User text to an FTS5 query: every word must match, the last one as a prefix."""
    words = _WORD.findall(q.lower())[:16]
    if not words:
        return None
    terms = [f'"{w}"' for w in words]
    terms[-1] += "*"
    return " ".join(terms)


class Index:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        with self._db() as db:
            db.executescript(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def add(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert rows (ignoring ids already present); returns how many were new."""
        added = 0
        with self._write_lock:
            db = self._db()
            db.execute("BEGIN")
            try:
                for row in rows:
                    cur = db.execute(
                        "INSERT OR IGNORE INTO generations (id, backend, model, prompt, video_path, row) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            row["id"],
                            row["backend"],
                            row["model"],
                            row["prompt"],
                            row["video_path"],
                            json.dumps(row, ensure_ascii=False),
                        ),
                    )
                    if cur.rowcount:
                        db.execute("INSERT INTO prompts (rowid, prompt) VALUES (?, ?)", (cur.lastrowid, row["prompt"]))
                        added += 1
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return added

    def has(self, generation_id: str) -> bool:
        return self._db().execute("SELECT 1 FROM generations WHERE id = ?", (generation_id,)).fetchone() is not None

    def count(self) -> int:
        return self._db().execute("SELECT count(*) FROM generations").fetchone()[0]

    def get(self, generation_id: str) -> dict[str, Any] | None:
        found = self._db().execute("SELECT row FROM generations WHERE id = ?", (generation_id,)).fetchone()
        return json.loads(found["row"]) if found else None

    def page(
        self,
        limit: int = 24,
        cursor: str | None = None,
        q: str | None = None,
        backend: str | None = None,
        model: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; `cursor` is the `next_cursor` of the page before."""
        limit = max(1, min(limit, PAGE_MAX))
        where, args = [], []
        if cursor:
            where.append("g.id < ?")
            args.append(cursor)
        if backend:
            where.append("g.backend = ?")
            args.append(backend)
        if model:
            where.append("g.model = ?")
            args.append(model)
        source = "generations g"
        match = fts_query(q) if q else None
        if q and match is None:
            return [], None
        if match:
            source = "prompts JOIN generations g ON g.rowid = prompts.rowid"
            where.append("prompts MATCH ?")
            args.append(match)
        sql = f"SELECT g.row FROM {source} {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY g.id DESC LIMIT ?"
        rows = [json.loads(r[0]) for r in self._db().execute(sql, (*args, limit + 1))]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1]["id"] if more else None)

    def get_state(self, key: str) -> str | None:
        found = self._db().execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return found[0] if found else None

    def set_state(self, key: str, value: str) -> None:
        with self._write_lock:
            self._db().execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
