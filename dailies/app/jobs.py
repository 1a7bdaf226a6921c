"""Jobs on the Redis queue: submit, status and cancel (app side), and the Redis keys both sides use.

Each job has our own hash `dailies:job:<id>` next to RQ's job. Its `status` moves
queued -> running -> succeeded | failed | canceled; the app writes queued, canceled (of a
job still in the queue) and succeeded (once the collector has stored the result); the worker
writes running, progress, failed and canceled. Cancellation of a running job is a separate
flag the backend checks between steps.

On a ZeroGPU Space an open-model job is recorded the same way (with `runner: request`) but not
queued: the caller takes its spec and runs it in the visitor's request (dailies/app/zerogpu.py),
which then writes what a worker would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import Job

import backends
from backends.base import Availability, Backend
from dailies.app.errors import ApiError
from dailies.app.limits import Limits, quota_for
from dailies.app.validation import validate
from dailies.app.visitors import Visitor
from dailies.contract import keys
from dailies.contract.settings import Settings
from dailies.contract.spec import JOB_TTL, POLL_LEASE_S, RUNNER, STALE_BEATS, TERMINAL, JobSpec, valid_id

UNAVAILABLE_RETRY_S = 30
IN_REQUEST = "request"  # the `runner` of a job that runs in the visitor's request (ZeroGPU)


def _int(value: str | None) -> int | None:
    return int(value) if value else None


@dataclass(frozen=True)
class JobStatus:
    """One job as GET /api/v1/jobs/{id} answers it (`to_json`)."""

    id: str
    status: str
    backend: str
    progress: float
    message: str
    position: int | None  # jobs ahead in our queue, or in the provider's while it runs there
    elapsed_s: float  # running (or ran) for
    waited_s: float  # in the queue before it started (so far, while queued)
    eta_s: float | None  # until done: running, from its progress; queued, from the runs ahead (None: unknown)
    seed: int | None
    request: dict[str, Any]
    error: str | None  # failed only
    result: dict[str, Any] | None  # succeeded only

    @property
    def active(self) -> bool:
        return self.status not in TERMINAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Jobs:
    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        availability: Callable[[Backend], Availability],
        in_request: Callable[[Backend], bool] = lambda backend: False,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.availability = availability
        self.limits = Limits(redis, settings.queue_max, settings.heartbeat_s)
        self.in_request = in_request  # ZeroGPU: open models run in the visitor's request, not on the queue
        self._in_request: dict[str, JobSpec] = {}

    def submit(self, body: Any, visitor: Visitor) -> dict:
        return self.enqueue([self.prepare(body, visitor)], visitor)[0]

    def prepare(self, body: Any, visitor: Visitor) -> JobSpec:
        """The validated job for a usable backend this visitor may use, or ApiError; nothing is written."""
        name = body.get("backend") if isinstance(body, dict) else None
        if not isinstance(name, str) or name not in backends.BACKEND_CLASSES:
            if not isinstance(body, dict):
                raise ApiError(400, "bad_request", "the body must be a JSON object")
            known = ", ".join(backends.BACKEND_CLASSES)
            raise ApiError(422, "unknown_backend", f"backend must be one of: {known}", "backend")
        backend = backends.get(name, self.settings)
        spec = validate(body, backend)
        if not visitor.signed_in and self.settings.requires_sign_in(name, backend.kind == "hosted"):
            raise ApiError(
                401,
                "sign_in_required",
                f"sign in with Hugging Face to use {backend.display_name} (on the API: a Hugging Face token as bearer)",
                "backend",
            )
        availability = self.availability(backend)
        if not availability.usable:
            raise ApiError(
                503,
                "backend_unavailable",
                f"{backend.display_name} is unavailable: {availability.reason}; try again in {UNAVAILABLE_RETRY_S} s",
                "backend",
                UNAVAILABLE_RETRY_S,
            )
        return spec

    def enqueue(self, specs: list[JobSpec], visitor: Visitor) -> list[dict]:
        """Queue prepared jobs (a comparison has several), or on ZeroGPU hold them for the request to
        run: room for all of them is reserved first, or none is taken."""
        quota = quota_for(visitor, self.settings)
        for i, spec in enumerate(specs):
            try:
                self.limits.reserve(visitor.key, spec.backend, spec.id, quota)
            except BaseException:
                for taken in specs[:i]:
                    self.limits.release(visitor.key, taken.backend, taken.id)
                raise
        answers = []
        for i, spec in enumerate(specs):
            try:
                answers.append(self._enqueue(spec))
            except BaseException:
                for left in specs[i:]:
                    self.limits.release(visitor.key, left.backend, left.id)
                raise
        return answers

    def _enqueue(self, spec: JobSpec) -> dict:
        here = self.in_request(backends.get(spec.backend, self.settings))
        self._write(spec, here)
        job_id, name = spec.id, spec.backend
        if here:
            # No queue: the caller takes the spec and runs it inside the visitor's request.
            self._in_request[job_id] = spec
            return {"id": job_id, "status": "queued", "position": 0, "seed": spec.seed}
        (ahead,), _ = self._queue_state([(name, job_id)])
        return {"id": job_id, "status": "queued", "position": ahead, "seed": spec.seed}

    def _write(self, spec: JobSpec, here: bool) -> None:
        now = time.time()
        with self.redis.pipeline() as pipe:
            pipe.hset(
                keys.job(spec.id),
                mapping={
                    "status": "queued",
                    "backend": spec.backend,
                    "created": now,
                    "progress": 0,
                    "request": json.dumps(spec.recipe()),
                    **({"runner": IN_REQUEST, "heartbeat": now} if here else {}),
                },
            )
            pipe.expire(keys.job(spec.id), JOB_TTL)
            pipe.execute()
        if here:
            return
        # Our hash exists before the job can reach a worker.
        Queue(keys.queue_name(spec.backend), connection=self.redis).enqueue_call(
            RUNNER, args=(spec,), job_id=spec.id, timeout=self.settings.job_timeout, result_ttl=600, failure_ttl=JOB_TTL
        )

    def take_in_request(self, job_id: str) -> JobSpec | None:
        """The spec of a job just accepted to run in this request (ZeroGPU), once; None for a queued job."""
        return self._in_request.pop(job_id, None)

    def _queue_state(self, queued: list[tuple[str, str]]) -> tuple[list[int], dict[str, str]]:
        """Jobs ahead of each (backend, job id) in its queue (0: next to run, or being picked up by
        a worker), and each backend's recent run time, in one round trip."""
        if not queued:
            return [], {}
        with self.redis.pipeline(transaction=False) as pipe:
            for backend, job_id in queued:
                pipe.lpos(Queue.redis_queue_namespace_prefix + keys.queue_name(backend), job_id)
            pipe.hgetall(keys.RUN_SECONDS)
            *positions, typical = pipe.execute()
        return [p or 0 for p in positions], keys.decode(typical)

    def status(self, job_id: str) -> JobStatus:
        found = self.statuses([job_id]).get(job_id)
        if found is None:
            raise ApiError(404, "not_found", f"no job {job_id!r}")
        return found

    def statuses(self, job_ids: list[str]) -> dict[str, JobStatus]:
        """The status of each job that exists, in two Redis round trips however many are asked for."""
        ids = [j for j in job_ids if valid_id(j)]
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(keys.job(job_id))
                pipe.hget(Job.key_for(job_id), "status")
            replies = pipe.execute()
        found = {
            job_id: (keys.decode(raw), rq.decode() if rq else None)
            for job_id, raw, rq in zip(ids, replies[::2], replies[1::2], strict=True)
            if raw
        }
        queued = [j for j, (raw, _) in found.items() if raw["status"] == "queued"]
        ahead, typical = self._queue_state([(found[j][0]["backend"], j) for j in queued])
        positions = dict(zip(queued, ahead, strict=True))
        now = time.time()
        return {
            j: self._describe(j, raw, rq, positions.get(j), typical.get(raw["backend"]), now)
            for j, (raw, rq) in found.items()
        }

    def _describe(
        self,
        job_id: str,
        raw: dict[str, str],
        rq_status: str | None,
        position: int | None,
        typical_s: str | None,
        now: float,
    ) -> JobStatus:
        status = raw["status"]
        # A hosted job between polls runs no RQ job; its heartbeat is the due time of its next poll.
        last_beat = float(raw.get("heartbeat", now))
        hosted = "remote" in raw
        in_request = raw.get("runner") == IN_REQUEST
        # A hosted poll step whose worker died is claimed again by another worker when its lease ends;
        # a job waiting for a ZeroGPU slot beats only once it has one; a local job on the queue is run
        # again by the app's reaper first (two rounds of grace for it).
        grace = POLL_LEASE_S if hosted or in_request else 2 * self.settings.heartbeat_s
        allowed = STALE_BEATS * self.settings.heartbeat_s + grace
        silent = (status == "running" or in_request) and status not in TERMINAL and now - last_beat > allowed
        on_queue = not (hosted or in_request)
        if silent or (status not in TERMINAL and on_queue and rq_status in ("failed", "stopped", None)):
            # The worker died (or the job expired) without writing an end state.
            status = "failed"
            raw.setdefault("error", "the worker stopped while running this job; please submit it again")
        started = float(raw.get("started", 0)) or None
        finished = float(raw.get("finished", 0)) or None
        progress = float(raw.get("progress", 0))
        elapsed = ((finished or now) - started) if started else 0.0
        waited = (started or finished or now) - float(raw.get("created", now))
        eta = elapsed * (1 - progress) / progress if status == "running" and progress >= 0.02 else None
        if status == "queued" and typical_s is not None:
            # The jobs ahead and this one, each as long as the backend's recent runs (one worker).
            eta = ((position or 0) + 1) * float(typical_s)
        request = json.loads(raw["request"])
        # Queued: our queue; running on a hosted backend: the provider's queue, when it says.
        if status != "queued":
            position = _int(raw.get("remote_position"))
        return JobStatus(
            id=job_id,
            status=status,
            backend=raw["backend"],
            progress=progress if status != "succeeded" else 1.0,
            message=raw.get("message", ""),
            position=position,
            elapsed_s=round(elapsed, 3),
            waited_s=round(max(waited, 0.0), 3),
            eta_s=round(eta, 1) if eta is not None else None,
            seed=request.get("seed"),
            request=request,
            error=raw.get("error") if status == "failed" else None,
            result=json.loads(raw["result"]) if status == "succeeded" else None,
        )

    def cancel(self, job_id: str) -> dict:
        status = self.status(job_id).status
        if status in TERMINAL:
            raise ApiError(409, "already_finished", f"job {job_id} has already {status}")
        self.redis.set(keys.cancel(job_id), 1, ex=JOB_TTL)
        queue = Queue(keys.queue_name(self.redis.hget(keys.job(job_id), "backend").decode()), connection=self.redis)
        if self.redis.lrem(queue.key, 1, job_id):
            # Still waiting: it is gone from the queue at once. A running job stops at its next step.
            with self.redis.pipeline() as pipe:
                pipe.hset(keys.job(job_id), mapping={"status": "canceled", "finished": time.time()})
                pipe.delete(Job.key_for(job_id))
                pipe.execute()
            return {"id": job_id, "status": "canceled"}
        return {"id": job_id, "status": "canceling"}
