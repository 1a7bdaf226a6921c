"""The gallery index: SQLite in the data folder with full-text search over prompts.

It is a view of the dataset and can always be rebuilt from it, less the generations taken down
(dailies/app/takedown.py): `add` never takes one of those back in. Ids sort by creation time and
each row's rowid is made from its id (milliseconds, then random bits), so "newest first" is a
walk down the rowid (and "oldest first" a walk up it), in the table and in the full-text index
alike: a search stops after one page of matches instead of sorting them all, and a page costs
the same at 100 rows or 100,000.
The cursor is the last id seen.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path

from dailies.app.dataset import GenerationRow
from dailies.app.errors import ApiError
from dailies.app.sqlite_state import STATE_TABLE, read_state, write_state

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    video_path TEXT NOT NULL,
    row TEXT NOT NULL,
    grp TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS generations_backend ON generations (backend, rowid);
CREATE INDEX IF NOT EXISTS generations_model ON generations (model, rowid);
CREATE INDEX IF NOT EXISTS generations_group ON generations (grp) WHERE grp != '';
-- The last word of a search is a prefix; prefixes of 2 to 4 characters have their own index
-- entries, so even a short one walks newest first instead of merging every matching term.
CREATE VIRTUAL TABLE IF NOT EXISTS prompts USING fts5 (
    prompt, content='generations', content_rowid='rowid', tokenize='unicode61', prefix='2 3 4'
);
"""
INSERT = (
    "INSERT OR IGNORE INTO generations (rowid, id, backend, model, prompt, video_path, row, grp) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
SCHEMA_VERSION = 3  # an index from another version is dropped and rebuilt
RANDOM_BITS = 15
PAGE_MAX = 100
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class GalleryQuery:
    """One page of the gallery: `cursor` is the `next_cursor` of the page before; an empty
    search or filter matches everything."""

    limit: int = 24
    cursor: str | None = None
    q: str | None = None
    backend: str | None = None
    model: str | None = None
    oldest_first: bool = False


def id_rowid(generation_id: str) -> int:
    """A rowid that sorts like the id: its milliseconds, then 15 of its random bits."""
    return int(generation_id[:12], 16) << RANDOM_BITS | int(generation_id[12:16], 16) >> (16 - RANDOM_BITS)


def fts_query(q: str) -> str | None:
    """User text to an FTS5 query: every word must match, the last one as a prefix."""
    words = _WORD.findall(q.lower())[:16]
    if not words:
        return None
    terms = [f'"{w}"' for w in words]
    terms[-1] += "*"
    return " ".join(terms)


class Index:
    def __init__(self, path: Path, taken_down: Container[str] = frozenset()) -> None:
        self.path = path
        self.taken_down = taken_down
        self._local = threading.local()
        self._write_lock = threading.Lock()
        db = self._db()
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            db.executescript(
                "DROP TABLE IF EXISTS prompts; DROP TABLE IF EXISTS generations; DROP TABLE IF EXISTS state;"
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.executescript(SCHEMA + STATE_TABLE)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            self._local.db = db
        return db

    def add(self, rows: Iterable[GenerationRow]) -> int:
        """Insert rows (ignoring ids already present); returns how many were new."""
        added = 0
        with self._write_lock:
            db = self._db()
            db.execute("BEGIN")
            try:
                for row in rows:
                    if row["id"] in self.taken_down:
                        continue
                    values = (
                        row["id"],
                        row["backend"],
                        row["model"],
                        row["prompt"],
                        row["video_path"],
                        json.dumps(row, ensure_ascii=False),
                        row.get("group") or "",  # rows from before comparisons have no group column
                    )
                    rowid = id_rowid(row["id"])
                    while not db.execute(INSERT, (rowid, *values)).rowcount:
                        if self._has(db, row["id"]):
                            break
                        rowid += 1  # two ids in one millisecond with the same 15 random bits
                    else:
                        db.execute("INSERT INTO prompts (rowid, prompt) VALUES (?, ?)", (rowid, row["prompt"]))
                        added += 1
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return added

    def remove(self, generation_id: str) -> None:
        """Take a generation out of the table and the full-text index (nothing if it is not in)."""
        with self._write_lock:
            db = self._db()
            found = db.execute("SELECT rowid, prompt FROM generations WHERE id = ?", (generation_id,)).fetchone()
            if found is None:
                return
            db.execute("BEGIN")
            try:
                # An external-content FTS table forgets a row only when told the text it indexed.
                db.execute("INSERT INTO prompts (prompts, rowid, prompt) VALUES ('delete', ?, ?)", tuple(found))
                db.execute("DELETE FROM generations WHERE rowid = ?", (found[0],))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @staticmethod
    def _has(db: sqlite3.Connection, generation_id: str) -> bool:
        return db.execute("SELECT 1 FROM generations WHERE id = ?", (generation_id,)).fetchone() is not None

    def count(self) -> int:
        return self._db().execute("SELECT count(*) FROM generations").fetchone()[0]

    def get(self, generation_id: str) -> GenerationRow | None:
        found = self._db().execute("SELECT row FROM generations WHERE id = ?", (generation_id,)).fetchone()
        return json.loads(found["row"]) if found else None

    def group(self, group_id: str) -> list[GenerationRow]:
        """The stored generations of one comparison, in the order they were submitted."""
        found = self._db().execute("SELECT row FROM generations WHERE grp = ? ORDER BY rowid", (group_id,))
        return [json.loads(r[0]) for r in found]

    def page(self, query: GalleryQuery = GalleryQuery()) -> tuple[list[GenerationRow], str | None]:
        """Newest first (or oldest first); the second value is the cursor of the next page (None:
        this is the last)."""
        limit = max(1, min(query.limit, PAGE_MAX))
        match = fts_query(query.q) if query.q else None
        if query.q and match is None:
            return [], None
        # With a search, the full-text index drives the walk (newest match first) and the
        # filters are checked on the way; without one, the table or a filter's index does.
        key = "prompts.rowid" if match else "g.rowid"
        source = "prompts JOIN generations g ON g.rowid = prompts.rowid" if match else "generations g"
        where, args = (["prompts MATCH ?"], [match]) if match else ([], [])
        after, order = (">", "ASC") if query.oldest_first else ("<", "DESC")
        if query.cursor:
            where.append(f"{key} {after} ?")
            args.append(self._cursor_rowid(query.cursor))
        for column, value in (("backend", query.backend), ("model", query.model)):
            if value:
                where.append(f"g.{column} = ?")
                args.append(value)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT g.row FROM {source} {clause} ORDER BY {key} {order} LIMIT ?"
        rows = [json.loads(r[0]) for r in self._db().execute(sql, (*args, limit + 1))]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1]["id"] if more else None)

    def _cursor_rowid(self, cursor: str) -> int:
        found = self._db().execute("SELECT rowid FROM generations WHERE id = ?", (cursor,)).fetchone()
        if found:
            return found[0]
        try:
            return id_rowid(cursor)
        except ValueError:
            raise ApiError(422, "invalid_field", "cursor is not a next_cursor this API gave", "cursor") from None

    def get_state(self, key: str) -> str | None:
        return read_state(self._db(), key)

    def set_state(self, key: str, value: str) -> None:
        with self._write_lock:
            write_state(self._db(), key, value)
