"""Supervision. Embedded mode: a dead worker or Redis is started again within seconds. Every
mode: a local job whose worker stopped beating (a worker on another machine died) is run once
more, then failed.

One thread in the app looks at its two children twice a second. Redis comes back on the same
port, password and append-only file, so the app's and the worker's connections simply reconnect.
A worker that died mid-job has its job run once more on the new worker (local backends; a
hosted job's polls are picked up again when their lease ends), then failed with a clear message
if it dies again: the job never stays `running`.

A child that keeps dying right after its start is restarted with a growing pause (up to 30 s)
so that a broken install does not spin.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from redis import Redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.job import JobStatus as RqStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from dailies.app.embedded import Children, EmbeddedRedis, start_worker
from dailies.contract import keys
from dailies.contract.job_record import Field, JobRecord, JobStatus
from dailies.contract.loop import BackgroundLoop
from dailies.contract.spec import JOB_TTL, MAX_ATTEMPTS, RUNNER, STALE_BEATS

CHECK_S = 0.5
STEADY_S = 10.0  # a child that lived this long is healthy again: its next restart is immediate
BACKOFF_MAX_S = 30.0
log = logging.getLogger("dailies.app.supervisor")


def reconnecting(url: str) -> Redis:
    """A client that retries a dropped connection, so callers ride over a short Redis restart."""
    return Redis.from_url(url, retry=Retry(ExponentialBackoff(cap=1.0), 5), retry_on_error=[RedisConnectionError])


class _Child:
    """One supervised process and when it may next be restarted."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.restarts = 0
        self.pause = 0.0
        self.not_before = 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def died(self, now: float) -> None:
        quick = now - self.started < STEADY_S
        self.pause = min(BACKOFF_MAX_S, max(1.0, self.pause * 2)) if quick else 0.0
        self.not_before = now + self.pause
        log.warning(
            "embedded %s exited (code %s); restarting%s",
            self.what,
            self.proc.returncode if self.proc else None,
            f" in {self.pause:.0f} s" if self.pause else "",
        )


class Supervisor:
    def __init__(self, data_dir: Path, backend_names: list[str]) -> None:
        self.children = Children()
        self.backend_names = backend_names
        self._redis_server = EmbeddedRedis(data_dir)
        self.url = self._redis_server.url
        self.redis = reconnecting(self.url)
        self._redis = _Child("redis-server")
        self._worker = _Child("worker")
        self._worker_name = ""
        self._start(self._redis)
        self._start(self._worker)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()
        atexit.register(self.stop)  # registered after Children's: runs first, so nothing is restarted at exit

    def worker_alive(self) -> bool:
        return self._worker.alive()

    def health(self) -> dict[str, Any]:
        return {
            "worker": {"alive": self._worker.alive(), "restarts": self._worker.restarts},
            "redis_server": {"alive": self._redis.alive(), "restarts": self._redis.restarts},
        }

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.children.stop()

    def _start(self, child: _Child) -> None:
        if child.proc is not None and child.proc in self.children.procs:
            self.children.procs.remove(child.proc)
        if child is self._redis:
            child.proc = self._redis_server.start(self.children)
        else:
            # A new name: RQ refuses a worker whose name a dead one still holds.
            self._worker_name = f"embedded-{os.getpid()}-{child.restarts}"
            child.proc = start_worker(self.children, self.url, self.backend_names, self._worker_name)
        child.started = time.monotonic()

    def _loop(self) -> None:
        while not self._stop.wait(CHECK_S):
            now = time.monotonic()
            # Redis first: a worker started without it would only die again.
            for child in (self._redis, self._worker):
                if child.alive() or (child is self._worker and not self._redis.alive()):
                    continue
                try:
                    if child.not_before == 0.0:  # just found dead
                        child.died(now)
                        if child is self._worker:
                            retire(self.redis, self._worker_name)
                    if now >= child.not_before:
                        child.restarts += 1
                        self._start(child)
                        child.not_before = 0.0
                except (RedisError, SystemExit, OSError):
                    log.exception("supervisor: restarting the %s failed; trying again", child.what)


class Reaper:
    """Looks every heartbeat for running local jobs whose worker has gone silent for STALE_BEATS
    beats, wherever that worker ran, and hands them to `retry_or_fail`."""

    def __init__(self, redis: Redis, backend_names: list[str], heartbeat_s: float) -> None:
        self.redis, self.backend_names, self.heartbeat_s = redis, backend_names, heartbeat_s
        self.loop = BackgroundLoop("reaper", self._step)

    def start(self) -> None:
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()

    def _step(self) -> float:
        self.reap()
        return self.heartbeat_s

    def reap(self) -> None:
        silent_before = time.time() - STALE_BEATS * self.heartbeat_s
        for name in self.backend_names:
            registry = StartedJobRegistry(keys.queue_name(name), connection=self.redis)
            for job_id in registry.get_job_ids(cleanup=False):
                beat = JobRecord(self.redis, job_id).get(Field.HEARTBEAT)
                if beat and float(beat) < silent_before:
                    retry_or_fail(self.redis, job_id)


def retire(redis: Redis, worker_name: str) -> None:
    """Take a dead worker off RQ's list and deal with the job it was running."""
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=redis)
    if worker is None:
        return
    job_id = worker.get_current_job_id()
    worker.register_death()
    if job_id:
        retry_or_fail(redis, job_id)


def retry_or_fail(redis: Redis, job_id: str) -> str | None:
    """A local job whose worker died: back to the front of its queue once, then failed.
    Returns the job's new status (None: not ours to handle)."""
    record = JobRecord(redis, job_id)
    raw = record.read()
    if not raw or JobStatus(raw[Field.STATUS]).terminal or Field.REMOTE in raw:
        return None
    try:
        job = Job.fetch(job_id, connection=redis)
    except NoSuchJobError:
        return None
    if job.func_name != RUNNER:
        return None  # a hosted poll step: claimed again when its lease ends
    queue = Queue(job.origin, connection=redis)
    StartedJobRegistry(queue=queue).remove_executions(job)
    if int(raw.get(Field.ATTEMPTS, 0)) < MAX_ATTEMPTS:
        if not record.requeue("worker stopped; running again"):
            return None  # it ended meanwhile
        queue.enqueue_job(job, at_front=True)
        log.warning("job %s: its worker died; queued again", job_id)
        return "queued"
    error = f"the worker stopped {MAX_ATTEMPTS} times while running this job; it was not tried again"
    record.end(JobStatus.FAILED, error=error)
    job.set_status(RqStatus.FAILED)
    FailedJobRegistry(queue=queue).add(job, ttl=JOB_TTL, exc_string=error)
    log.warning("job %s: its worker died again; failed", job_id)
    return "failed"
