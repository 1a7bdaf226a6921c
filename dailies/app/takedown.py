"""Takedown: a visitor reports a generation; an owner hides it at once or removes it everywhere.

- hidden: out of the index (so out of the gallery, search and comparisons), and every address of
  it (`/api/v1/generations/<id>`, `/g/<id>`, `/c/<its comparison>`, `/media/...`) answers 410.
  Its files stay in the dataset folder and on the Hub until it is removed.
- removed: hidden, and also its row and files deleted from the dataset folder and, in the
  publisher's next commit, from the Hub dataset.

Reports and tombstones live in `takedown.sqlite` in the data folder, not in Redis or the index:
reports must outlive Redis (an embedded Redis can lose its file, job keys expire), and the
tombstones must outlive the index, which is dropped and rebuilt from the dataset or the Hub: the
index never takes a tombstoned id back in, so no rebuild undoes a takedown.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import unicodedata
from enum import StrEnum
from pathlib import Path
from typing import Any

from dailies.app.dataset import GenerationRow, LocalDataset
from dailies.app.errors import ApiError, invalid
from dailies.app.index import Index
from dailies.app.limits import Window
from dailies.app.publisher import Publisher
from dailies.app.visitors import Visitor
from dailies.contract import keys
from dailies.contract.settings import Settings
from dailies.contract.spec import valid_id

REASON_MAX = 500
REPORTS_LISTED = 500  # GET /api/v1/reports: the newest this many

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    rowid INTEGER PRIMARY KEY,
    generation_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    reporter TEXT,  -- the Hub username when signed in; an address is not kept
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tombstones (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    grp TEXT NOT NULL,
    row TEXT NOT NULL,  -- the dataset row: where its files are, for a removal after a hide
    by TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tombstones_group ON tombstones (grp) WHERE grp != '';
"""


class State(StrEnum):
    HIDDEN = "hidden"
    REMOVED = "removed"


def reason_of(body: Any) -> str:
    """The report's reason: text of 1 to REASON_MAX characters, without control characters
    (line breaks and tabs allowed), and nothing else in the body."""
    if not isinstance(body, dict):
        raise invalid("reason", 'send {"reason": "..."}')
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise invalid(unknown[0], f"unknown field {unknown[0]!r}")
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise invalid("reason", "reason must be text saying what is wrong")
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise invalid("reason", f"reason is {len(reason)} characters; the limit is {REASON_MAX}")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t" for c in reason):
        raise invalid("reason", "reason must be plain text (no control characters)")
    return reason


class Tombstones:
    """Reports and taken-down generations, in SQLite; `in` says whether an id is taken down."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)

    def __contains__(self, generation_id: object) -> bool:
        return self.state(str(generation_id)) is not None

    def state(self, generation_id: str) -> State | None:
        if not valid_id(generation_id):  # any text a URL carries: only an id can be taken down
            return None
        with self._lock:
            found = self._db.execute("SELECT state FROM tombstones WHERE id = ?", (generation_id,)).fetchone()
        return State(found[0]) if found else None

    def row(self, generation_id: str) -> GenerationRow | None:
        with self._lock:
            found = self._db.execute("SELECT row FROM tombstones WHERE id = ?", (generation_id,)).fetchone()
        return json.loads(found[0]) if found else None

    def group_gone(self, group_id: str) -> bool:
        if not valid_id(group_id):
            return False
        with self._lock:
            return self._db.execute("SELECT 1 FROM tombstones WHERE grp = ?", (group_id,)).fetchone() is not None

    def put(self, row: GenerationRow, state: State, by: str) -> None:
        """Tombstone a generation; a removed one stays removed (hiding it again changes nothing)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO tombstones (id, state, grp, row, by, at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET state = excluded.state, by = excluded.by, at = excluded.at "
                "WHERE tombstones.state != 'removed'",
                (row["id"], state, row.get("group") or "", json.dumps(row, ensure_ascii=False), by, time.time()),
            )

    def removed(self) -> list[GenerationRow]:
        with self._lock:
            found = self._db.execute("SELECT row FROM tombstones WHERE state = 'removed'").fetchall()
        return [json.loads(r[0]) for r in found]

    def add_report(self, generation_id: str, reason: str, reporter: str | None) -> dict[str, Any]:
        created = time.time()
        with self._lock:
            rowid = self._db.execute(
                "INSERT INTO reports (generation_id, reason, reporter, created) VALUES (?, ?, ?, ?)",
                (generation_id, reason, reporter, created),
            ).lastrowid
        return {"id": rowid, "generation_id": generation_id, "reason": reason, "created": created}

    def reports(self) -> list[dict[str, Any]]:
        """The newest reports first, each with what became of its generation (`visible` if nothing)."""
        with self._lock:
            found = self._db.execute(
                "SELECT r.rowid, r.generation_id, r.reason, r.reporter, r.created, coalesce(t.state, 'visible') "
                "FROM reports r LEFT JOIN tombstones t ON t.id = r.generation_id ORDER BY r.rowid DESC LIMIT ?",
                (REPORTS_LISTED,),
            ).fetchall()
        names = ("id", "generation_id", "reason", "reporter", "created", "state")
        return [dict(zip(names, r, strict=True)) for r in found]


def gone(generation_id: str) -> ApiError:
    return ApiError(410, "gone", f"generation {generation_id!r} was taken down")


class Takedown:
    """The API's actions: report (anyone, limited), list reports, hide and remove (owners)."""

    def __init__(
        self,
        tombstones: Tombstones,
        index: Index,
        dataset: LocalDataset,
        publisher: Publisher | None,  # None: no HF_TOKEN, the Hub copy cannot be deleted from here
        window: Window,
        settings: Settings,
    ) -> None:
        self.tombstones, self.index, self.dataset, self.publisher = tombstones, index, dataset, publisher
        self.window, self.settings = window, settings

    def check(self, generation_id: str) -> None:
        """410 for a generation taken down."""
        if generation_id in self.tombstones:
            raise gone(generation_id)

    def report(self, generation_id: str, body: Any, visitor: Visitor) -> dict[str, Any]:
        self._row(generation_id)
        reason = reason_of(body)
        wait = self.window.take(keys.reports(visitor.key))
        if wait is not None:
            raise ApiError(429, "report_limit", f"too many reports; try again in {wait} s", retry_after=wait)
        return {"report": self.tombstones.add_report(generation_id, reason, visitor.username)}

    def reports(self, visitor: Visitor) -> dict[str, Any]:
        self._owner(visitor)
        return {"reports": self.tombstones.reports()}

    def hide(self, generation_id: str, visitor: Visitor) -> dict[str, Any]:
        owner = self._owner(visitor)
        row = self._row(generation_id, taken_down=True)
        self.tombstones.put(row, State.HIDDEN, owner)
        self.index.remove(generation_id)
        return {"id": generation_id, "state": self.tombstones.state(generation_id)}

    def remove(self, generation_id: str, visitor: Visitor) -> dict[str, Any]:
        owner = self._owner(visitor)
        row = self._row(generation_id, taken_down=True)
        # The tombstone first: from here on no rebuild brings it back, and a stop is finished by resume().
        self.tombstones.put(row, State.REMOVED, owner)
        self._erase(row)
        return {"id": generation_id, "state": State.REMOVED}

    def resume(self) -> None:
        """On start: finish removals a stop may have interrupted (each step is idempotent)."""
        for row in self.tombstones.removed():
            self._erase(row)

    def _erase(self, row: GenerationRow) -> None:
        self.index.remove(row["id"])
        self.dataset.remove(row)
        if self.publisher:
            self.publisher.remove(row)

    def _owner(self, visitor: Visitor) -> str:
        if not visitor.signed_in:
            raise ApiError(401, "sign_in_required", "owners sign in: send 'Authorization: Bearer hf_...'")
        if not self.settings.is_owner(visitor.username):
            raise ApiError(403, "forbidden", f"{visitor.username} is not an owner of this Dailies")
        return visitor.username

    def _row(self, generation_id: str, taken_down: bool = False) -> GenerationRow:
        """The stored row: 404 when there is none; 410 when taken down, unless `taken_down` (an
        owner acting on it again: its tombstone keeps the row)."""
        if not valid_id(generation_id):
            raise ApiError(404, "not_found", f"no generation {generation_id!r}")
        if generation_id in self.tombstones:
            if not taken_down:
                raise gone(generation_id)
            return self.tombstones.row(generation_id)
        row = self.index.get(generation_id)
        if row is None:
            raise ApiError(404, "not_found", f"no generation {generation_id!r}")
        return row
