"""A job's record, the Redis hash `dailies:job:<id>`, and the one module that writes it.

Every status change and every field goes through `JobRecord`, whose writes run one Lua script
(`_WRITE`) that enforces the job's life in Redis itself:

    queued -> running -> succeeded | failed | canceled
    queued -> canceled | failed            (canceled in the queue; RQ lost it)
    running -> queued                      (the re-run of a dead worker's job)

A finished job never changes again: the collector cannot turn a canceled job into a succeeded one.
Each run of a job gets a run token (the `attempts` count, raised by `start`); a worker writes with
its token and the script refuses it once the job was handed to another run (fencing), so a
stalled worker that wakes up cannot overwrite its successor. Each accepted write publishes the
job id on `dailies:changes`, so whoever shows jobs can follow changes instead of reading them.

The worker side's `Reporter` (progress, cancel, end) and `hand_back` (the video to the collector)
live here too: a worker and the ZeroGPU request driver report the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script

from dailies.contract import keys
from dailies.contract.settings import Settings
from dailies.contract.spec import JOB_TTL

PROGRESS_EVERY = 0.25  # seconds between a run's progress writes; the final state is always written


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


class Field(StrEnum):
    """Every field of a job's hash."""

    STATUS = "status"
    BACKEND = "backend"
    CREATED = "created"
    REQUEST = "request"  # the spec's recipe, JSON
    RUNNER = "runner"  # "request" for a job run in its visitor's request (ZeroGPU); absent on the queue
    OWNER = "owner"  # who may cancel or retry it (dailies/app/visitors.py); absent: no one (queued before owners)
    PROGRESS = "progress"
    MESSAGE = "message"
    HEARTBEAT = "heartbeat"
    STARTED = "started"
    FINISHED = "finished"
    ATTEMPTS = "attempts"  # runs so far, and the run token of the current one
    ERROR = "error"
    RESULT = "result"  # the stored generation's summary, JSON
    REMOTE = "remote"  # a hosted job's remote state, JSON
    REMOTE_SUBMITTING = "remote_submitting"  # being sent to the provider (never sent twice)
    REMOTE_POSITION = "remote_position"  # its place in the provider's queue
    REMOTE_RETRIES = "remote_retries"
    REMOTE_DONE = "remote_done"  # its video was handed back


IN_REQUEST = "request"  # the `runner` of a job that runs in its visitor's request (ZeroGPU)
_FIELDS = frozenset(Field)

# KEYS[1]: the hash; KEYS[2]: the changes channel; KEYS[3]: the start image. ARGV: op, job id, new status ('' none),
# run token ('' unchecked), then field/value pairs ('del': field names).
# Answers 'ok' (or the new run token for 'start'), else why not: missing, final, stale, refused.
_WRITE = """
local op, id, to, run = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = redis.call('HMGET', KEYS[1], 'status', 'attempts')
local current = now[1]
if not current then return 'missing' end
if current == 'succeeded' or current == 'failed' or current == 'canceled' then return 'final' end
if run ~= '' and now[2] ~= run then return 'stale' end
local allowed = {
  queued = {running = true, canceled = true, failed = true},
  running = {succeeded = true, failed = true, canceled = true, queued = true},
}
if op == 'start' and current ~= 'queued' then return 'refused' end
if to ~= '' and to ~= current and not allowed[current][to] then return 'refused' end
local answer = 'ok'
if op == 'start' then answer = tostring(redis.call('HINCRBY', KEYS[1], 'attempts', 1)) end
if op == 'claim' and redis.call('HSETNX', KEYS[1], ARGV[5], ARGV[6]) == 0 then return 'taken' end
if op == 'claim' then
elseif op == 'del' then
  for i = 5, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
elseif #ARGV > 4 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 5))
end
if to ~= '' then redis.call('HSET', KEYS[1], 'status', to) end
-- An ended job never runs again: its start image (up to 10 MB) leaves Redis with its end.
if to == 'succeeded' or to == 'failed' or to == 'canceled' then redis.call('DEL', KEYS[3]) end
redis.call('PUBLISH', KEYS[2], id)
return answer
"""

# KEYS: the job's hash, its result hash, the collect list. ARGV: run token ('' unchecked), the
# result's TTL, job id, video, poster, metadata. One script, so that a run handed on between the
# check and the write cannot put its video where its successor's goes: 1 if handed back, else 0.
_HAND_BACK = """
local now = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if now[1] ~= 'running' or (ARGV[1] ~= '' and now[2] ~= ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'video', ARGV[4], 'poster', ARGV[5], 'meta', ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[3])
return 1
"""


_scripts: dict[str, Script] = {}  # each registered once: every write of every job runs one


def _script(redis: Redis, source: str) -> Script:
    if source not in _scripts:
        _scripts[source] = redis.register_script(source)
    return _scripts[source]


class Superseded(Exception):
    """This run's job was handed to another run (or ended): it must stop and write nothing more."""


def _pairs(fields: dict[str, Any]) -> list[Any]:
    unknown = set(fields) - _FIELDS
    if unknown:
        raise ValueError(f"not fields of a job's record: {sorted(unknown)}")
    return [v for name, value in fields.items() for v in (name, value)]


class JobRecord:
    """One job's hash. `run`: the run token a worker writes with (None: the app, never fenced)."""

    def __init__(self, redis: Redis, job_id: str, run: int | None = None) -> None:
        self.redis, self.id, self.run = redis, job_id, run
        self.key = keys.job(job_id)

    @property
    def token(self) -> int | str:
        """The run token as the scripts take it ('' for the app: unchecked)."""
        return "" if self.run is None else self.run

    def _write(self, op: str, status: JobStatus | None, fields: dict[str, Any], client: Pipeline | None = None) -> Any:
        script = _script(self.redis, _WRITE)
        if client is None and isinstance(self.redis, Pipeline):
            client = self.redis
        args = [op, self.id, status or "", self.token, *_pairs(fields)]
        names = [self.key, keys.CHANGES, keys.image(self.id)]
        if client is not None:
            script(keys=names, args=args, client=client)
            return "pipelined"  # answered by the pipeline's execute
        answer = script(keys=names, args=args, client=self.redis)
        return answer.decode() if isinstance(answer, bytes) else str(answer)

    # -- the app -----------------------------------------------------------------------------

    def create(
        self,
        backend: str,
        request: dict[str, Any],
        in_request: bool,
        owner: str | None = None,
        image: bytes | None = None,
        client: Pipeline | None = None,
    ) -> None:
        """A new queued job (the one write that does not go through the script: nothing exists yet),
        its owner, and its start image, kept beside the record until the job ends (see `image`)."""
        now = time.time()
        mapping: dict[str, Any] = {
            Field.STATUS: JobStatus.QUEUED,
            Field.BACKEND: backend,
            Field.CREATED: now,
            Field.PROGRESS: 0,
            Field.REQUEST: json.dumps(request),
        }
        if in_request:
            mapping |= {Field.RUNNER: IN_REQUEST, Field.HEARTBEAT: now}
        if owner is not None:
            mapping[Field.OWNER] = owner
        pipe = client if client is not None else self.redis.pipeline()
        pipe.hset(self.key, mapping=mapping)
        pipe.expire(self.key, JOB_TTL)
        if image is not None:
            pipe.set(keys.image(self.id), image, ex=JOB_TTL)
        pipe.publish(keys.CHANGES, self.id)
        if client is None:
            pipe.execute()

    def read(self) -> dict[str, str]:
        return keys.decode(self.redis.hgetall(self.key))

    def image(self) -> bytes | None:
        """The start image given to `create`: the queue's copy of a job (RQ's, kept after the job
        ends) holds none, so the image can leave Redis the moment the job ends."""
        return self.redis.get(keys.image(self.id))

    def get(self, name: Field) -> str | None:
        value = self.redis.hget(self.key, name)
        return value.decode() if value is not None else None

    def request_cancel(self) -> None:
        """Ask a running job to stop at its next step (its backend looks between steps)."""
        self.redis.set(keys.cancel(self.id), 1, ex=JOB_TTL)

    def cancel_requested(self) -> bool:
        return bool(self.redis.exists(keys.cancel(self.id)))

    # -- whoever runs it ---------------------------------------------------------------------

    def start(self, message: str = "") -> int | None:
        """queued -> running: this run's token, or None when the job is no longer queued."""
        now = time.time()
        fields = {Field.STARTED: now, Field.HEARTBEAT: now, Field.PROGRESS: 0, Field.MESSAGE: message}
        answer = self._write("start", JobStatus.RUNNING, fields)
        if not answer.isdigit():
            return None
        self.run = int(answer)
        return self.run

    def update(self, client: Pipeline | None = None, **fields: Any) -> bool:
        """Fields of an unfinished job (progress, message, heartbeat, remote state); False if refused."""
        return self._write("set", None, fields, client) in ("ok", "pipelined")

    def forget(self, *names: Field, client: Pipeline | None = None) -> bool:
        return self._write("del", None, {name: "" for name in names}, client) in ("ok", "pipelined")

    def claim(self, name: Field) -> bool:
        """Set a flag field once: False when it was already set (a duplicate run of the same step)."""
        return self._write("claim", None, {name: 1}) == "ok"

    def end(self, status: JobStatus, client: Pipeline | None = None, **fields: Any) -> bool:
        """The job's last state; False when it had already ended or was handed to another run."""
        if not status.terminal:
            raise ValueError(f"{status} is not an end state")
        return self._write("set", status, {Field.FINISHED: time.time(), **fields}, client) in ("ok", "pipelined")

    def requeue(self, message: str) -> bool:
        """running -> queued: a dead worker's job goes back to the queue for another run."""
        return self._write("set", JobStatus.QUEUED, {Field.PROGRESS: 0, Field.MESSAGE: message}) == "ok"


def beat(redis: Redis, job_id: str) -> None:
    """A worker's heartbeat for the job it runs (or the hosted job it polls)."""
    JobRecord(redis, job_id).update(**{Field.HEARTBEAT: time.time()})


@dataclass(frozen=True)
class ResultMeta:
    """What a run hands the collector beside the MP4 and poster."""

    model: str
    width: int
    height: int
    num_frames: int
    fps: int
    has_audio: bool
    started: float
    finished: float
    run: int | None = None  # the run token of the run that made it
    extra: dict[str, Any] = field(default_factory=dict)  # a backend's own, e.g. its timings

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ResultMeta:
        data = json.loads(raw)
        data.setdefault("has_audio", False)  # a worker from before sound sends none
        data.setdefault("run", None)  # nor one from before run tokens
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class Reporter:
    """How a run reports one job: progress (at most every PROGRESS_EVERY), cancel, end, hand-back."""

    def __init__(self, record: JobRecord) -> None:
        self.record = record
        self.last = 0.0

    def progress(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            if not self.record.update(
                **{Field.PROGRESS: round(min(max(fraction, 0.0), 0.99), 4), Field.MESSAGE: message}
            ):
                raise Superseded(self.record.id)

    def cancelled(self) -> bool:
        """Asked to stop, or superseded (then stopping is all this run may do)."""
        with self.record.redis.pipeline(transaction=False) as pipe:  # one round trip a step
            pipe.exists(keys.cancel(self.record.id))
            pipe.hmget(self.record.key, Field.STATUS, Field.ATTEMPTS)
            asked, (status, run) = pipe.execute()
        if asked:
            return True
        superseded = self.record.run is not None and run is not None and int(run) != self.record.run
        return superseded or (status is not None and JobStatus(status.decode()).terminal)

    def end(self, status: JobStatus, **fields: Any) -> bool:
        return self.record.end(status, **fields)

    def hand_back(self, mp4: bytes, poster: bytes, meta: ResultMeta, settings: Settings) -> JobStatus | None:
        """The video and its metadata into Redis for the collector (who ends the job succeeded);
        a video over the result limit fails the job. None when this run may no longer write."""
        size, most = len(mp4) + len(poster), settings.result_max_bytes
        if size > most:
            error = f"the video is {size // 2**20} MB, over the {most // 2**20} MB limit"
            return JobStatus.FAILED if self.end(JobStatus.FAILED, error=error) else None
        record = self.record
        handed = _script(record.redis, _HAND_BACK)(
            keys=[record.key, keys.result(record.id), keys.COLLECT],
            args=[record.token, settings.result_ttl, record.id, mp4, poster, meta.to_json()],
        )
        if not handed:
            return None
        record.update(**{Field.PROGRESS: 0.99, Field.MESSAGE: "saving"})  # refused if already collected
        return JobStatus.RUNNING
