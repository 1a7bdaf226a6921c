"""A small key -> text table kept beside other tables in an app-side SQLite file (the gallery
index's sync position, the publish queue's commit history)."""

from __future__ import annotations

import sqlite3

STATE_TABLE = "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);"


def read_state(db: sqlite3.Connection, key: str) -> str | None:
    found = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
    return found[0] if found else None


def write_state(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
