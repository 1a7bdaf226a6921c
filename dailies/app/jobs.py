"""Jobs on the Redis queue, app side: prepare, enqueue, status and cancel.

A job's record (`dailies:job:<id>`) is written only through `dailies.contract.job_record`, which
enforces its life: queued -> running -> succeeded | failed | canceled. The app creates it queued,
cancels a job still in the queue, and (the collector) ends it succeeded once its result is stored;
whoever runs it writes the rest. Cancelling a running job raises a flag its backend checks
between steps. A job belongs to the visitor who made it (`Field.OWNER`): only they may cancel or
retry it; to anyone else it answers as an unknown id does. Reading it stays open to all.

There is one way in, `enqueue`: it answers what it accepted and where each job runs. On a
ZeroGPU Space an open-model job is recorded the same way but runs in the visitor's own request
(`Accepted.in_request`): the page's event that submitted it drives it (dailies/app/zerogpu.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
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
from dailies.contract.job_record import IN_REQUEST, TERMINAL, Field, JobRecord, JobStatus
from dailies.contract.settings import Settings
from dailies.contract.spec import JOB_TTL, POLL_LEASE_S, RUNNER, STALE_BEATS, JobSpec, valid_id

UNAVAILABLE_RETRY_S = 30


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def _unknown(job_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no job {job_id!r}")


@dataclass(frozen=True)
class Accepted:
    """A job `enqueue` took: its answer to the caller, and where it runs."""

    spec: JobSpec
    position: int  # jobs ahead in its queue
    in_request: bool  # ZeroGPU: it runs in the visitor's request, driven by the caller (zerogpu.run)

    def to_json(self) -> dict[str, Any]:
        """The answer of POST /api/v1/jobs."""
        return {"id": self.spec.id, "status": JobStatus.QUEUED, "position": self.position, "seed": self.spec.seed}


@dataclass(frozen=True)
class JobView:
    """One job as GET /api/v1/jobs/{id} answers it (`to_json`)."""

    id: str
    status: JobStatus
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


REAPER_GRACE_S = 5.0


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

    def submit(self, body: Any, visitor: Visitor, from_page: bool = False) -> Accepted:
        """One job. `from_page`: a page event that can drive a job run in its request (ZeroGPU)."""
        return self.enqueue([self.prepare(body, visitor, from_page)], visitor)[0]

    def prepare(self, body: Any, visitor: Visitor, from_page: bool = False) -> JobSpec:
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
        if self.in_request(backend) and not from_page:
            # The GPU is lent to a page's request for the visitor's quota: a program's request has no page.
            raise ApiError(
                409,
                "runs_in_page",
                f"on this ZeroGPU Space {backend.display_name} runs in a visitor's page, not through the JSON API:"
                " use the page, or the page's /submit endpoint with gradio_client",
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

    def enqueue(self, specs: list[JobSpec], visitor: Visitor) -> list[Accepted]:
        """Record prepared jobs (a comparison has several) and queue those that run on a worker:
        room for all of them is reserved first, or none is taken."""
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
                answers.append(self._enqueue(spec, visitor.owner))
            except BaseException:
                for left in specs[i:]:
                    self.limits.release(visitor.key, left.backend, left.id)
                raise
        return answers

    def _enqueue(self, spec: JobSpec, owner: str | None) -> Accepted:
        here = self.in_request(backends.get(spec.backend, self.settings))
        # The record exists before the job can reach a worker.
        record = JobRecord(self.redis, spec.id)
        if here:
            record.create(spec.backend, spec.recipe(), in_request=True, owner=owner)
            return Accepted(spec, 0, in_request=True)
        # The image waits beside the record, which drops it when the job ends; RQ's copy of the
        # job (its arguments and their repr, kept for a while after the end) never holds it.
        record.create(spec.backend, spec.recipe(), in_request=False, owner=owner, image=spec.image)
        Queue(keys.queue_name(spec.backend), connection=self.redis).enqueue_call(
            RUNNER,
            args=(replace(spec, image=None),),
            job_id=spec.id,
            timeout=self.settings.job_timeout,
            result_ttl=600,
            failure_ttl=JOB_TTL,
        )
        (ahead,), _ = self._queue_state([(spec.backend, spec.id)])
        return Accepted(spec, ahead, in_request=False)

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

    def status(self, job_id: str) -> JobView:
        found = self.statuses([job_id]).get(job_id)
        if found is None:
            raise _unknown(job_id)
        return found

    def owned(self, job_id: str, visitor: Visitor) -> JobView:
        """The status of a job this visitor made; anyone else's (or no one's) answers as an
        unknown id does, so that whether it exists is not given away."""
        owner = JobRecord(self.redis, job_id).get(Field.OWNER) if valid_id(job_id) else None
        if not visitor.owns(owner):
            raise _unknown(job_id)
        return self.status(job_id)

    def statuses(self, job_ids: list[str]) -> dict[str, JobView]:
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
        queued = [j for j, (raw, _) in found.items() if raw[Field.STATUS] == JobStatus.QUEUED]
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
    ) -> JobView:
        status = JobStatus(raw[Field.STATUS])
        # A hosted job between polls runs no RQ job; its heartbeat is the due time of its next poll.
        last_beat = float(raw.get("heartbeat", now))
        hosted = "remote" in raw
        in_request = raw.get("runner") == IN_REQUEST
        # A hosted poll step whose worker died is claimed again by another worker when its lease ends;
        # a job waiting for a ZeroGPU slot beats only once it has one; a local job on the queue is run
        # again by the app's reaper first (two rounds of grace for it, and seconds at least: on a busy
        # machine the reaper runs late, and a job shown failed here would then come back queued).
        grace = POLL_LEASE_S if hosted or in_request else max(2 * self.settings.heartbeat_s, REAPER_GRACE_S)
        allowed = STALE_BEATS * self.settings.heartbeat_s + grace
        silent = (status == JobStatus.RUNNING or in_request) and status not in TERMINAL and now - last_beat > allowed
        on_queue = not (hosted or in_request)
        if silent or (status not in TERMINAL and on_queue and rq_status in ("failed", "stopped", None)):
            # The worker died (or the job expired) without writing an end state.
            status = JobStatus.FAILED
            raw.setdefault("error", "the worker stopped while running this job; please submit it again")
        started = float(raw.get("started", 0)) or None
        finished = float(raw.get("finished", 0)) or None
        progress = float(raw.get("progress", 0))
        elapsed = ((finished or now) - started) if started else 0.0
        waited = (started or finished or now) - float(raw.get("created", now))
        eta = elapsed * (1 - progress) / progress if status == JobStatus.RUNNING and progress >= 0.02 else None
        if status == JobStatus.QUEUED and typical_s is not None:
            # The jobs ahead and this one, each as long as the backend's recent runs (one worker).
            eta = ((position or 0) + 1) * float(typical_s)
        request = json.loads(raw["request"])
        # Queued: our queue; running on a hosted backend: the provider's queue, when it says.
        if status != JobStatus.QUEUED:
            position = _int(raw.get("remote_position"))
        return JobView(
            id=job_id,
            status=status,
            backend=raw["backend"],
            progress=progress if status != JobStatus.SUCCEEDED else 1.0,
            message=raw.get("message", ""),
            position=position,
            elapsed_s=round(elapsed, 3),
            waited_s=round(max(waited, 0.0), 3),
            eta_s=round(eta, 1) if eta is not None else None,
            seed=request.get("seed"),
            request=request,
            error=raw.get("error") if status == JobStatus.FAILED else None,
            result=json.loads(raw["result"]) if status == JobStatus.SUCCEEDED else None,
        )

    def retry(self, job_id: str, visitor: Visitor, from_page: bool = False) -> Accepted:
        """The visitor's job submitted again, as a new job with its recipe (its seed included)."""
        request = self.owned(job_id, visitor).request
        body = {k: v for k, v in request.items() if k not in ("id", "params", "group") and v not in (None, "")}
        return self.submit({**body, **request["params"]}, visitor, from_page)

    def cancel(self, job_id: str, visitor: Visitor) -> dict:
        found = self.owned(job_id, visitor)
        if found.status in TERMINAL:
            raise ApiError(409, "already_finished", f"job {job_id} has already {found.status}")
        record = JobRecord(self.redis, job_id)
        record.request_cancel()
        queue = Queue(keys.queue_name(found.backend), connection=self.redis)
        if self.redis.lrem(queue.key, 1, job_id):
            # Still waiting: it is gone from the queue at once. A running job stops at its next step.
            record.end(JobStatus.CANCELED)
            self.redis.delete(Job.key_for(job_id))
            return {"id": job_id, "status": JobStatus.CANCELED}
        return {"id": job_id, "status": "canceling"}
