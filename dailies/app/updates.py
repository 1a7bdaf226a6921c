"""Pushed job updates: one loop in the app follows the watched jobs and fans changes out.

Pages and programs subscribe to a job (`follow`). One thread asks Redis once per interval, in one
script call, for a short fingerprint of every watched job (its hash's changing fields, RQ's
status, its place in the queue); only jobs whose fingerprint moved are read in full
(`Jobs.statuses`), and the changed statuses go to the event loop in a single call, which wakes
each subscriber. So the cost grows with changes, not with pages times ticks. A subscriber that falls
behind only ever sees the latest state.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job
from starlette.concurrency import run_in_threadpool

from dailies.app.jobs import Jobs, JobView
from dailies.contract import keys
from dailies.contract.retry import backoff

INTERVAL_S = 0.2  # how often the watched jobs are read; a change reaches a page within about this
RECHECK_TICKS = 25  # every job is also read in full this often: a silent worker changes nothing in Redis
KEEPALIVE_S = 15.0  # a quiet stream sends a comment this often so proxies keep it open
log = logging.getLogger("dailies.app.updates")
# KEYS: n job hashes, then their n RQ job hashes; ARGV[1]: the queue key prefix. One string per job.
# (The queue key is built here from the job's backend: fine on one Redis, not on a cluster.)
FINGERPRINTS = """
local n = #KEYS / 2
local out = {}
for i = 1, n do
  local f = redis.call('HMGET', KEYS[i], 'status', 'progress', 'message', 'error', 'remote_position',
                       'heartbeat', 'finished', 'backend')
  local parts = {}
  for j = 1, 7 do parts[j] = tostring(f[j]) end
  parts[8] = tostring(redis.call('HGET', KEYS[n + i], 'status'))
  if f[1] == 'queued' then
    local id = string.sub(KEYS[i], string.len(KEYS[i]) - 23)
    parts[9] = tostring(redis.call('LPOS', ARGV[1] .. tostring(f[8]), id))
  end
  out[i] = table.concat(parts, '|')
end
return out
"""


def _signature(status: JobView) -> tuple:
    """What makes a status a change worth sending (elapsed time alone is not: pages count it)."""
    return status.status, status.progress, status.message, status.position, status.error


class _Subscriber:
    __slots__ = ("latest", "ready")

    def __init__(self) -> None:
        self.latest: JobView | None = None
        self.ready = asyncio.Event()

    def push(self, status: JobView | None) -> None:
        self.latest = status
        self.ready.set()


class Updates:
    def __init__(self, jobs: Jobs, interval: float = INTERVAL_S) -> None:
        self.jobs = jobs
        self.interval = interval
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._fingerprints: dict[str, bytes] = {}
        self._seen: dict[str, tuple | None] = {}
        self._script = jobs.redis.register_script(FINGERPRINTS)
        self._ticks = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.failing = 0  # ticks that failed in a row
        self.last_error: str | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="dailies-updates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def watched(self) -> int:
        with self._lock:
            return len(self._subscribers)

    async def follow(self, job_id: str) -> AsyncIterator[JobView | None]:
        """The job's status now, then each change until it ends; None now and then while nothing changes.

        Raises ApiError (404) here, before anything is streamed, when there is no such job.
        """
        subscriber = _Subscriber()
        self._loop = asyncio.get_running_loop()
        with self._lock:
            self._subscribers.setdefault(job_id, set()).add(subscriber)
        self._wake.set()
        # Subscribed before the first read, so no change between the two is missed.
        try:
            current = await run_in_threadpool(self.jobs.status, job_id)
        except BaseException:
            self._remove(job_id, subscriber)
            raise
        return self._stream(job_id, subscriber, current)

    async def _stream(self, job_id: str, subscriber: _Subscriber, current: JobView) -> AsyncIterator[JobView | None]:
        try:
            yield current
            last = _signature(current)
            while current.active:
                try:
                    await asyncio.wait_for(subscriber.ready.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield None
                    continue
                subscriber.ready.clear()
                if subscriber.latest is None:
                    return  # the job expired from Redis
                current = subscriber.latest
                if _signature(current) != last:
                    last = _signature(current)
                    yield current
        finally:
            self._remove(job_id, subscriber)

    def _remove(self, job_id: str, subscriber: _Subscriber) -> None:
        with self._lock:
            watchers = self._subscribers.get(job_id)
            if watchers is not None:
                watchers.discard(subscriber)
                if not watchers:
                    del self._subscribers[job_id]

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                ids = list(self._subscribers)
                for gone in self._seen.keys() - self._subscribers.keys():
                    del self._seen[gone]
                    self._fingerprints.pop(gone, None)
            if not ids:
                self._wake.wait()
                self._wake.clear()
                continue
            started = time.monotonic()
            try:
                self._tick(ids)
                self.failing = 0
            except RedisError as exc:
                self._failed(exc)
                log.warning("could not read job states: %s", exc)
            except Exception as exc:  # the loop must outlive any bug: pages would freeze for good
                self._failed(exc)
                log.exception("updates: a tick failed")
            pause = backoff(self.failing, first_s=self.interval, max_s=5.0) if self.failing else self.interval
            self._stopping.wait(max(0.0, pause - (time.monotonic() - started)))

    def _failed(self, exc: Exception) -> None:
        self.failing += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]

    def health(self) -> dict[str, Any]:
        running = self._thread is not None and self._thread.is_alive()
        return {
            "running": running,
            "watched_jobs": self.watched,
            "failing": self.failing > 0,
            "last_error": self.last_error,
        }

    def _tick(self, ids: list[str]) -> None:
        prints = self._script(
            keys=[keys.job(j) for j in ids] + [Job.key_for(j) for j in ids],
            args=[Queue.redis_queue_namespace_prefix + keys.queue_name("")],
        )
        self._ticks += 1
        due = set(ids[self._ticks % RECHECK_TICKS :: RECHECK_TICKS])
        for job_id, fingerprint in zip(ids, prints, strict=True):
            if self._fingerprints.get(job_id) != fingerprint:
                self._fingerprints[job_id] = fingerprint
                due.add(job_id)
        if not due:
            return
        statuses = self.jobs.statuses(list(due))
        changed: dict[str, JobView | None] = {}
        for job_id in due:
            status = statuses.get(job_id)
            signature = _signature(status) if status else None
            if self._seen.get(job_id, ()) != signature:
                self._seen[job_id] = signature
                changed[job_id] = status
        if changed and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._fan_out, changed)

    def _fan_out(self, changed: dict[str, JobView | None]) -> None:
        """On the event loop: wake every subscriber of each changed job; an ended job drops its subscribers."""
        with self._lock:
            for job_id, status in changed.items():
                for subscriber in self._subscribers.get(job_id, ()):
                    subscriber.push(status)
                if status is None or not status.active:
                    self._subscribers.pop(job_id, None)
