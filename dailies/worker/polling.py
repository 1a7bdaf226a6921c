"""Hosted jobs without a waiting worker: submit once, then poll steps enqueued after a delay.

The remote state (ids, no key) goes into the job hash, field `remote`, before any wait. A job's
next poll is its score (due time) in the sorted set `dailies:due:<backend>`. Each worker that
serves a polled backend runs a `Dispatcher` thread that claims due entries (one Lua script, so
one worker per entry) and enqueues a poll step on the backend's RQ queue. A claim moves the
entry one lease ahead, so if the worker dies mid-poll another picks the job up after the lease;
the poll step sets the real next time, or removes the entry when the job ends. A restarted
worker thus resumes the same remote job and never submits it again.

RQ's own scheduler (`enqueue_in` + `with_scheduler`) was not used: it runs in a forked process
holding a per-queue lock under a random name for 61 s, so after a crash a new worker waits for
that lock and for its next maintenance pass (minutes) before delayed jobs move again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue

from backends.base import Backend, GenerationError, Video
from backends.hosted_common import Misconfigured, Pending, PolledBackend, RetryLater
from dailies.contract import keys
from dailies.contract.job_record import Field, JobRecord, JobStatus, Reporter
from dailies.contract.loop import BackgroundLoop
from dailies.contract.retry import backoff
from dailies.contract.settings import Settings
from dailies.contract.spec import JOB_TTL, POLL_LEASE_S, JobSpec

log = logging.getLogger("dailies.worker.polling")
POLL = "dailies.worker.runner.poll"
SUBMIT_WAIT_MAX_S = 30  # longest pause between tries of a create the provider asked us to retry
MISCONFIGURED_TTL = 3600
DISPATCH_EVERY_S = 0.5
CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, id in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return due
"""


Deliver = Callable[[Video], str]


def schedule(redis: Redis | Pipeline, backend: str, job_id: str, after_s: float) -> None:
    """The job's next poll, due in `after_s`. Its heartbeat is set to that time: a job whose
    poll is long overdue has no worker left to move it, and the app reports it failed."""
    due = time.time() + after_s
    redis.zadd(keys.due(backend), {job_id: due})
    JobRecord(redis, job_id).update(**{Field.HEARTBEAT: due})


def fail(redis: Redis, reporter: Reporter, backend: Backend, exc: GenerationError) -> str:
    """End the job with the provider's reason; a refused key marks the backend unavailable."""
    if isinstance(exc, Misconfigured):
        redis.set(keys.misconfigured(backend.name), str(exc), ex=MISCONFIGURED_TTL)
    reporter.end(JobStatus.FAILED, error=str(exc))
    return "failed"


def submit(redis: Redis, request: JobSpec, backend: PolledBackend, reporter: Reporter, settings: Settings) -> str:
    """Send the job once and store its remote state; the first poll is then due."""
    record = reporter.record
    raw = record.read()
    remote, submitting = raw.get(Field.REMOTE), raw.get(Field.REMOTE_SUBMITTING)
    if remote:  # this step ran before and got as far as the provider: resume polling
        schedule(redis, backend.name, request.id, 0)
        return "polling"
    if submitting:
        reporter.end(
            JobStatus.FAILED,
            error=f"the worker stopped while sending this job to {backend.provider}; "
            "it was not sent again so that it is not paid twice",
        )
        return "failed"
    record.update(**{Field.REMOTE_SUBMITTING: 1})
    tries = 0
    while True:
        try:
            state = backend.submit(request)
            break
        except RetryLater as exc:
            tries += 1
            wait = exc.after_s if exc.after_s is not None else backoff(tries)
            if tries > settings.hosted_retries or wait > SUBMIT_WAIT_MAX_S:
                return fail(redis, reporter, backend, GenerationError(f"{exc.reason}; try again later"))
            reporter.progress(0.0, f"{exc.reason}; trying again in {wait:.0f} s")
            time.sleep(wait)
            if reporter.cancelled():
                reporter.end(JobStatus.CANCELED)
                return "canceled"
        except GenerationError as exc:
            return fail(redis, reporter, backend, exc)
    with redis.pipeline() as pipe:
        record.update(pipe, **{Field.REMOTE: json.dumps(state), Field.MESSAGE: f"sent to {backend.provider}"})
        record.forget(Field.REMOTE_SUBMITTING, client=pipe)
        schedule(pipe, backend.name, request.id, backend.poll_every)
        pipe.execute()
    return "submitted"


def poll(
    redis: Redis, job_id: str, backend: PolledBackend, reporter: Reporter, settings: Settings, deliver: Deliver
) -> str:
    """One look at the remote job: reschedule it, or end it (video, failure, cancel, timeout)."""
    if not redis.set(keys.polling(job_id), 1, nx=True, ex=POLL_LEASE_S):
        return "busy"  # a duplicate of a poll still running elsewhere
    try:
        return _poll(redis, job_id, backend, reporter, settings, deliver)
    finally:
        redis.delete(keys.polling(job_id))


def _poll(
    redis: Redis, job_id: str, backend: PolledBackend, reporter: Reporter, settings: Settings, deliver: Deliver
) -> str:
    record, due = reporter.record, keys.due(backend.name)
    raw = record.read()
    if not raw or JobStatus(raw[Field.STATUS]).terminal or Field.REMOTE not in raw or raw.get(Field.REMOTE_DONE):
        redis.zrem(due, job_id)
        return "gone"
    state = json.loads(raw["remote"])

    def end(status: JobStatus, **fields: Any) -> str:
        redis.zrem(due, job_id)
        reporter.end(status, **fields)
        return status

    if reporter.cancelled():
        backend.cancel(state)
        return end(JobStatus.CANCELED)
    if time.time() - float(raw[Field.STARTED]) > settings.job_timeout:
        backend.cancel(state)
        return end(JobStatus.FAILED, error=f"{backend.provider} did not finish within {settings.job_timeout} s")
    try:
        answer = backend.poll(state)
    except RetryLater as exc:
        tries = int(raw.get(Field.REMOTE_RETRIES, 0)) + 1  # one poll of a job at a time (the polling lease)
        if tries > settings.hosted_retries:
            return end(JobStatus.FAILED, error=f"{exc.reason}; gave up after {tries} tries")
        wait = exc.after_s if exc.after_s is not None else backoff(tries)
        with redis.pipeline() as pipe:
            record.update(
                pipe, **{Field.REMOTE_RETRIES: tries, Field.MESSAGE: f"{exc.reason}; trying again in {wait:.0f} s"}
            )
            schedule(pipe, backend.name, job_id, wait)
            pipe.execute()
        return "retry"
    except GenerationError as exc:
        redis.zrem(due, job_id)
        return fail(redis, reporter, backend, exc)
    except Exception:
        log.exception("polling job %s on %s failed", job_id, backend.name)
        return end(JobStatus.FAILED, error=f"{backend.display_name} failed; the error is in the worker's log")
    if isinstance(answer, Pending):
        mapping: dict[str, Any] = {Field.MESSAGE: answer.message, Field.REMOTE_RETRIES: 0}
        if answer.progress is not None:
            mapping[Field.PROGRESS] = round(min(max(answer.progress, 0.0), 0.99), 4)
        if answer.position is not None:
            mapping[Field.REMOTE_POSITION] = answer.position
        with redis.pipeline() as pipe:
            record.update(pipe, **mapping)
            if answer.position is None:
                record.forget(Field.REMOTE_POSITION, client=pipe)
            schedule(pipe, backend.name, job_id, answer.after_s)
            pipe.execute()
        return "pending"
    redis.zrem(due, job_id)
    if not record.claim(Field.REMOTE_DONE):
        return "duplicate"  # a poll that outlived its lock already handed this video back
    record.forget(Field.REMOTE_POSITION)
    return deliver(answer)


class Dispatcher:
    """Moves due polls of these backends onto their RQ queues (one per worker process)."""

    def __init__(self, redis: Redis, backend_names: list[str], poll_timeout: int) -> None:
        self.redis, self.names, self.poll_timeout = redis, backend_names, poll_timeout
        self.claim = redis.register_script(CLAIM)
        self._loop = BackgroundLoop("dispatcher", self._step)

    def start(self) -> None:
        self._loop.start()

    def _step(self) -> float:
        try:
            self.dispatch()
        except RedisError:
            log.warning("dispatcher: Redis unreachable; trying again", exc_info=True)
        return DISPATCH_EVERY_S

    def dispatch(self) -> int:
        moved = 0
        for name in self.names:
            now = time.time()
            due = self.claim(keys=[keys.due(name)], args=[now, now + POLL_LEASE_S])
            if not due:
                continue
            queue = Queue(keys.queue_name(name), connection=self.redis)
            for raw in due:
                queue.enqueue_call(
                    POLL,
                    args=(raw.decode(), name),
                    meta={"job": raw.decode()},
                    timeout=self.poll_timeout,
                    result_ttl=0,
                    failure_ttl=JOB_TTL,
                )
                moved += 1
        return moved
