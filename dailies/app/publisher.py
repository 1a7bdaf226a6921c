"""The one publisher in the app: new generations into the Hub dataset, in batched commits.

Rows wait in a durable queue (`publish.sqlite` in the data folder), so an app restart or a Hub
outage of any length loses nothing. A commit adds each pending row's MP4 and poster and, for
each batch folder it touches, that folder's whole `metadata.jsonl` limited to rows that are
(or are being) published; re-sending a folder is therefore idempotent and a row is never listed
twice. A commit whose outcome is unknown (the app stopped mid-commit, or the answer was an
error) is checked against the repo's tree before anything is sent again.

A generation taken down (dailies/app/takedown.py) waits in the same file until a commit deletes
its MP4 and poster and rewrites its folder's `metadata.jsonl` without it; removals go before new
rows, and only what the repo still holds is deleted, so that commit too is safe to send again.

At most one commit per `DAILIES_COMMIT_EVERY` seconds and at most HOURLY_MAX per hour, whatever
the job rate; 429 and 5xx (and any other failure) back off exponentially, honouring Retry-After.
The thread sleeps until the next attempt is due: a new row or stop() wakes it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperation, CommitOperationAdd, CommitOperationDelete
from huggingface_hub.errors import HfHubHTTPError

from dailies.app.dataset import GenerationRow, LocalDataset, drop_rows
from dailies.app.hub import REPO_TYPE, HubRepo, git_blob_oid, record_files, short_error
from dailies.app.index import Index
from dailies.app.sqlite_state import STATE_TABLE, read_state, write_state
from dailies.contract.loop import BackgroundLoop
from dailies.contract.retry import backoff, retry_after

log = logging.getLogger("dailies.app.publisher")
COMMIT_MAX_ROWS = 100  # ~200 files per commit
HOURLY_MAX = 100  # the Hub allows 128 commits per hour per repo
BACKOFF_MAX_S = 300.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    id TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    poster TEXT NOT NULL,
    published INTEGER NOT NULL DEFAULT 0,  -- 0 waiting, 1 on the Hub, -1 its local files are gone
    commit_sha TEXT
);
CREATE INDEX IF NOT EXISTS rows_pending ON rows (published, id);
CREATE TABLE IF NOT EXISTS removals (
    id TEXT PRIMARY KEY,
    folder TEXT NOT NULL,
    poster TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0  -- 1 once the repo holds none of its files or its row
);
"""


@dataclass(frozen=True)
class QueuedRow:
    """A row in the publish queue: its id and where its files lie in the dataset folder."""

    id: str
    folder: str  # data/<date>/<batch>
    poster: str  # posters/<date>/<id>.jpg

    @classmethod
    def of(cls, row: GenerationRow) -> QueuedRow:
        return cls(row["id"], row["video_path"].rsplit("/", 1)[0], row["poster"])

    @property
    def video(self) -> str:
        return f"{self.folder}/{self.id}.mp4"


class PublishQueue:
    """Which rows are on the Hub and which still wait, in SQLite next to the index.

    It is kept apart from the index on purpose: the index can be deleted and rebuilt, the queue
    cannot."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA + STATE_TABLE)

    def add(self, row: GenerationRow) -> None:
        """Queue a new row (an id already queued or published is left as it is)."""
        queued = QueuedRow.of(row)
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO rows (id, folder, poster) VALUES (?, ?, ?)",
                (queued.id, queued.folder, queued.poster),
            )

    def mark_published(self, rows: Iterable[GenerationRow | QueuedRow], sha: str | None) -> None:
        """Rows now on the Hub (also rows read back from the Hub by the index rebuild)."""
        values = []
        for r in rows:
            queued = r if isinstance(r, QueuedRow) else QueuedRow.of(r)
            values.append((queued.id, queued.folder, queued.poster, sha))
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO rows (id, folder, poster, published, commit_sha) VALUES (?, ?, ?, 1, ?) "
                "ON CONFLICT (id) DO UPDATE SET published = 1, commit_sha = coalesce(excluded.commit_sha, commit_sha)",
                values,
            )
            self._db.execute("COMMIT")

    def mark_missing(self, rows: Iterable[QueuedRow]) -> None:
        with self._lock:
            self._db.executemany("UPDATE rows SET published = -1 WHERE id = ?", [(p.id,) for p in rows])

    def remove(self, row: QueuedRow) -> None:
        """A generation taken down: never send it, and delete it from the repo (once, whatever
        the number of calls)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE rows SET published = -1 WHERE id = ? AND published = 0", (row.id,))
            self._db.execute(
                "INSERT OR IGNORE INTO removals (id, folder, poster) VALUES (?, ?, ?)", (row.id, row.folder, row.poster)
            )
            self._db.execute("COMMIT")

    def removals(self, limit: int) -> list[QueuedRow]:
        with self._lock:
            found = self._db.execute(
                "SELECT id, folder, poster FROM removals WHERE done = 0 ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [QueuedRow(*r) for r in found]

    def removals_done(self, rows: Iterable[QueuedRow]) -> None:
        with self._lock:
            self._db.executemany("UPDATE removals SET done = 1 WHERE id = ?", [(r.id,) for r in rows])

    def waiting(self) -> int:
        """Rows to send plus removals to make: whether the publisher has anything to do."""
        with self._lock:
            return self._db.execute(
                "SELECT (SELECT count(*) FROM rows WHERE published = 0) "
                "+ (SELECT count(*) FROM removals WHERE done = 0)"
            ).fetchone()[0]

    def pending(self, limit: int) -> list[QueuedRow]:
        with self._lock:
            found = self._db.execute(
                "SELECT id, folder, poster FROM rows WHERE published = 0 ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [QueuedRow(*r) for r in found]

    def pending_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM rows WHERE published = 0").fetchone()[0]

    def published(self, ids: Iterable[str]) -> set[str]:
        ids = list(ids)
        if not ids:
            return set()
        with self._lock:
            found = self._db.execute(
                f"SELECT id FROM rows WHERE published = 1 AND id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
        return {r[0] for r in found}

    def get_state(self, key: str) -> str | None:
        with self._lock:
            return read_state(self._db, key)

    def set_state(self, key: str, value: str) -> None:
        with self._lock:
            write_state(self._db, key, value)


class Publisher:
    def __init__(
        self,
        repo: HubRepo,
        dataset: LocalDataset,
        queue: PublishQueue,
        index: Index,
        commit_every: float,
        clock: Callable[[], float] = time.time,  # the benchmark runs it on a simulated clock
    ) -> None:
        self.repo, self.dataset, self.queue, self.index, self.clock = repo, dataset, queue, index, clock
        self.commit_every = max(0.0, commit_every)
        self._loop = BackgroundLoop("publisher", self.step, stop_timeout=30)
        # Commit times of the last hour survive a restart, so a crash loop cannot exceed the budget.
        self._recent: list[float] = json.loads(queue.get_state("recent_commits") or "[]")
        self._retry_at = 0.0
        self._failures = 0
        self._uncertain = True  # the last run may have stopped mid-commit
        self._repo_ready = False
        self.last_error: str | None = None
        self.last_commit: dict[str, Any] | None = json.loads(queue.get_state("last_commit") or "null")

    # --- the app's side -----------------------------------------------------------------------

    def enqueue(self, row: GenerationRow) -> None:
        """The collector's hook: called once a row is stored locally (and again on recovery)."""
        self.queue.add(row)
        self._loop.wake()

    def remove(self, row: GenerationRow) -> None:
        """Takedown's hook: delete a generation from the repo in the next commit."""
        self.queue.remove(QueuedRow.of(row))
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def health(self) -> dict[str, Any]:
        pending = self.queue.pending_count()
        due = self._next_attempt() if self.queue.waiting() else None
        return {
            "enabled": True,
            "running": self._loop.running,
            "repo": self.repo.repo_id,
            "endpoint": self.repo.endpoint,
            "private": self.repo.private,
            "pending": pending,
            "removals": self.queue.waiting() - pending,
            "last_commit": self.last_commit,
            "last_error": self.last_error,
            "failures": self._failures,
            "next_attempt_in_s": None if due is None else round(max(0.0, due - self.clock()), 1),
            "commits_last_hour": len(self._window()),
        }

    # --- the thread ---------------------------------------------------------------------------

    def _window(self) -> list[float]:
        now = self.clock()
        return [t for t in self._recent if now - t < 3600]

    def _next_attempt(self) -> float:
        recent = self._window()
        due = max(self._retry_at, (recent[-1] + self.commit_every) if recent else 0.0)
        if len(recent) >= HOURLY_MAX:
            due = max(due, recent[-HOURLY_MAX] + 3600)
        return due

    def step(self) -> float | None:
        """Commit if one is due; return the seconds until the next attempt (None: nothing waits)."""
        if self.queue.waiting() and self._next_attempt() <= self.clock():
            self._attempt()
        return self._next_attempt() - self.clock() if self.queue.waiting() else None

    def _attempt(self) -> None:
        try:
            self.publish_once()
        except Exception as exc:
            self._failures += 1
            wait = backoff(self._failures, max(0.5, min(self.commit_every, 30.0)), BACKOFF_MAX_S)
            asked = (
                retry_after(exc.response.headers)
                if isinstance(exc, HfHubHTTPError) and exc.response is not None
                else None
            )
            wait = max(wait, asked or 0.0)
            self._retry_at = self.clock() + wait
            self.last_error = short_error(exc)
            log.warning("publishing failed (attempt %d, next in %.0f s): %s", self._failures, wait, self.last_error)
        else:
            self._failures, self._retry_at, self.last_error = 0, 0.0, None

    def publish_once(self) -> str | None:
        """One commit of up to COMMIT_MAX_ROWS pending rows; returns its sha (None if nothing to do)."""
        if not self._repo_ready:
            self.repo.api.create_repo(self.repo.repo_id, repo_type=REPO_TYPE, exist_ok=True)
            self._repo_ready = True
        # A cheap read first: in an outage it fails at once, where the upload calls retry for long.
        parent = self.repo.sha()
        removals = self.queue.removals(COMMIT_MAX_ROWS)
        if removals and (sha := self._remove(removals, parent)):
            return sha
        batch = self.queue.pending(COMMIT_MAX_ROWS)
        if self._uncertain and batch:
            self._settle_landed(batch, parent)
            batch = self.queue.pending(COMMIT_MAX_ROWS)
        self._uncertain = False
        batch = self._present(batch)
        if not batch:
            return None
        # New rows go to a new folder: each commit adds a batch folder of its own.
        self.dataset.close_batch()
        operations, metadata = self._operations(batch)
        self._uncertain = True  # from here until the answer, the commit may or may not land
        sha = self._commit(operations, f"Add {_generations(len(batch))}")
        self._uncertain = False
        self.queue.mark_published(batch, sha)
        self.queue.set_state("readme", "sent")
        self._after_commit(sha, {"rows": len(batch)}, metadata, parent)
        log.info("published %d generations in commit %s", len(batch), sha[:8])
        return sha

    def _commit(self, operations: list[CommitOperation], message: str) -> str:
        # Attempts count against the hourly budget too: a commit whose answer is lost has landed.
        self._recent = [*self._window(), self.clock()]
        self.queue.set_state("recent_commits", json.dumps(self._recent))
        return self.repo.api.create_commit(
            self.repo.repo_id, operations, commit_message=message, repo_type=REPO_TYPE
        ).oid

    def _remove(self, removals: list[QueuedRow], parent: str) -> str | None:
        """One commit deleting taken-down generations: their MP4s and posters, and their rows from
        each folder's metadata.jsonl as the repo holds it (this replica may never have had the
        folder). None when the repo holds nothing of them any more."""
        gone = {r.id for r in removals}
        operations: list[CommitOperation] = []
        metadata = []
        folders = {r.folder for r in removals} | {r.poster.rsplit("/", 1)[0] for r in removals}
        for folder in sorted(folders):
            remote = self.repo.files(folder)
            operations += [CommitOperationDelete(p) for r in removals for p in (r.video, r.poster) if p in remote]
            path = f"{folder}/metadata.jsonl"
            if path not in remote:
                continue
            text = self.repo.download(path, revision=parent).read_text(encoding="utf-8")
            kept = drop_rows(text, gone)
            if not kept:
                operations.append(CommitOperationDelete(path))
            elif kept != text:
                operations.append(CommitOperationAdd(path, kept.encode()))
                metadata.append((path, git_blob_oid(kept.encode())))
        if not operations:
            self.queue.removals_done(removals)
            return None
        sha = self._commit(operations, f"Remove {_generations(len(removals))}")
        self.queue.removals_done(removals)
        self._after_commit(sha, {"removed": len(removals)}, metadata, parent)
        log.info("removed %d generations in commit %s", len(removals), sha[:8])
        return sha

    def _present(self, batch: list[QueuedRow]) -> list[QueuedRow]:
        """Rows whose local files are gone can never be sent: set them aside so they do not
        block the queue."""
        root = self.dataset.root
        missing = [p for p in batch if not ((root / p.video).is_file() and (root / p.poster).is_file())]
        if missing:
            self.queue.mark_missing(missing)
            log.error("%d queued generations have no local files and are skipped: %s", len(missing), missing[0].id)
        return [p for p in batch if p not in missing]

    def _settle_landed(self, batch: list[QueuedRow], sha: str) -> None:
        """Mark the rows whose MP4 is already in the repo: an earlier commit carried them (and
        their folder's metadata), only its answer was lost."""
        landed = []
        for folder in sorted({p.folder for p in batch}):
            remote = self.repo.files(folder)
            landed += [p for p in batch if p.folder == folder and p.video in remote]
        if landed:
            self.queue.mark_published(landed, sha)
            log.info("%d pending generations were already in the repo; not sending them again", len(landed))

    def _operations(self, batch: list[QueuedRow]) -> tuple[list[CommitOperationAdd], list[tuple[str, str]]]:
        root = self.dataset.root
        ops = []
        if self.queue.get_state("readme") != "sent":
            ops.append(CommitOperationAdd("README.md", root / "README.md"))
        for p in batch:
            ops.append(CommitOperationAdd(p.video, root / p.video))
            ops.append(CommitOperationAdd(p.poster, root / p.poster))
        sending = {p.id for p in batch}
        metadata = []
        for folder in sorted({p.folder for p in batch}):
            lines = self.dataset.metadata_lines(folder)
            keep = sending | self.queue.published(i for i, _ in lines if i not in sending)
            content = "".join(line + "\n" for i, line in lines if i in keep).encode()
            ops.append(CommitOperationAdd(f"{folder}/metadata.jsonl", content))
            metadata.append((f"{folder}/metadata.jsonl", git_blob_oid(content)))
        return ops, metadata

    def _after_commit(self, sha: str, counts: dict[str, int], metadata: list[tuple[str, str]], parent: str) -> None:
        self.last_commit = {"sha": sha, "at": self.clock(), **counts}
        self.queue.set_state("last_commit", json.dumps(self.last_commit))
        record_files(self.index, metadata, parent, sha)


def _generations(n: int) -> str:
    return f"{n} generation{'s' if n != 1 else ''}"
