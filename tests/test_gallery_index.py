"""The gallery index on its own: newest-first (and oldest-first) paging with search and filters,
ids that share a millisecond, and a rebuild when the schema changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dailies.app.errors import ApiError
from dailies.app.index import GalleryQuery, Index

pytestmark = [pytest.mark.hub, pytest.mark.unit]


def row(gid: str, prompt: str, backend: str = "preview", model: str = "m1") -> dict:
    return {"id": gid, "prompt": prompt, "backend": backend, "model": model, "video_path": f"data/d/b/{gid}.mp4"}


def walk(index: Index, **kw) -> list[str]:
    seen, cursor = [], None
    while True:
        rows, cursor = index.page(GalleryQuery(limit=3, cursor=cursor, **kw))
        seen += [r["id"] for r in rows]
        if cursor is None:
            return seen


def test_pages_newest_first_through_search_and_filters(tmp_path: Path) -> None:
    index = Index(tmp_path / "index.sqlite")
    # Ids share milliseconds, and two share the 15 random bits the rowid keeps as well.
    ids = [f"{1000 + i // 4:012x}{(i * 7919) % 65536:04x}{i:08x}" for i in range(40)]
    ids += [f"{2000:012x}ffff{0:08x}", f"{2000:012x}fffe{1:08x}"]
    rows = [
        row(g, f"{'storm' if i % 3 else 'calm'} sea {i}", ("preview", "wan")[i % 2], f"m{i % 4}")
        for i, g in enumerate(ids)
    ]
    assert index.add(rows[::-1]) == len(rows) and index.add(rows) == 0  # order of insertion does not matter
    newest = sorted(ids, reverse=True)
    assert walk(index) == newest
    by = {r["id"]: r for r in rows}
    assert walk(index, q="storm") == [g for g in newest if by[g]["prompt"].startswith("storm")]
    assert walk(index, q="sto", backend="wan") == [
        g for g in newest if by[g]["prompt"].startswith("storm") and by[g]["backend"] == "wan"
    ]
    assert walk(index, model="m3") == [g for g in newest if by[g]["model"] == "m3"]
    assert walk(index, q="calm", model="m0") == [
        g for g in newest if by[g]["prompt"].startswith("calm") and by[g]["model"] == "m0"
    ]
    # Oldest first walks the same rows the other way, with and without a search.
    assert walk(index, oldest_first=True) == newest[::-1]
    assert walk(index, q="storm", backend="wan", oldest_first=True) == [
        g for g in newest[::-1] if by[g]["prompt"].startswith("storm") and by[g]["backend"] == "wan"
    ]
    assert index.page(GalleryQuery(q="!!!")) == ([], None)
    with pytest.raises(ApiError):
        index.page(GalleryQuery(cursor="not-a-cursor"))


def test_an_index_of_another_schema_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE generations (rowid INTEGER PRIMARY KEY, id TEXT)")
        db.execute("INSERT INTO generations (id) VALUES ('old')")
    index = Index(path)
    assert index.count() == 0
    index.add([row(f"{1:012x}{0:012x}", "fresh")])
    assert index.count() == 1
