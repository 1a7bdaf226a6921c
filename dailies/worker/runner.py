"""The function RQ runs on a worker: one job through one backend, result handed back via Redis.

Only this side writes a running job's progress. The result (MP4, poster, metadata) goes into
`dailies:result:<id>` with a TTL and the id onto the collect list, so workers need no shared
disk and no Hub token.
"""

from __future__ import annotations

import json
import logging
import time
from functools import cache
from typing import Any

from redis import Redis
from rq import get_current_job
from rq.timeouts import JobTimeoutException

import backends
from backends.base import Cancelled, GenerationError, Video
from backends.hosted_common import PolledBackend
from dailies.contract import keys
from dailies.contract.settings import Settings
from dailies.contract.spec import JobSpec
from dailies.worker import polling

log = logging.getLogger("dailies.worker.runner")
PROGRESS_EVERY = 0.25  # seconds between progress writes; the final state is always written


@cache
def settings() -> Settings:
    return Settings.from_env()


class JobReporter:
    """Progress, cancel flag and end state of one job in its Redis hash (a worker's, or the app's on ZeroGPU)."""

    def __init__(self, redis: Redis, job_id: str) -> None:
        self.redis, self.key, self.cancel = redis, keys.job(job_id), keys.cancel(job_id)
        self.last = 0.0

    def progress(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY:
            self.last = now
            self.redis.hset(self.key, mapping={"progress": round(min(max(fraction, 0.0), 0.99), 4), "message": message})

    def cancelled(self) -> bool:
        return bool(self.redis.exists(self.cancel))

    def end(self, status: str, **fields: Any) -> None:
        self.redis.hset(self.key, mapping={"status": status, "finished": time.time(), **fields})


def run(spec: JobSpec) -> str:
    rq_job = get_current_job()
    redis: Redis = rq_job.connection
    reporter = JobReporter(redis, spec.id)
    if reporter.cancelled():
        reporter.end("canceled")
        return "canceled"
    started = time.time()
    redis.hset(
        keys.job(spec.id), mapping={"status": "running", "started": started, "heartbeat": started, "progress": 0}
    )
    backend = backends.get(spec.backend, settings())
    if isinstance(backend, PolledBackend):
        return polling.submit(redis, spec, backend, reporter, settings())
    try:
        video = backend.generate(spec, reporter.progress, reporter.cancelled)
    except Cancelled:
        reporter.end("canceled")
        return "canceled"
    except GenerationError as exc:
        return polling.fail(redis, reporter, backend, exc)
    except JobTimeoutException:
        reporter.end("failed", error=f"the job ran longer than its limit of {rq_job.timeout} s")
        raise
    except Exception:
        log.exception("job %s failed in backend %s", spec.id, spec.backend)
        reporter.end("failed", error=f"{backend.display_name} failed; the error is in the worker's log")
        raise
    return hand_back(redis, reporter, spec.id, video, started)


def poll(job_id: str, backend_name: str) -> str:
    """One poll step of a hosted job (enqueued by the worker's dispatcher when it is due)."""
    redis: Redis = get_current_job().connection
    backend = backends.get(backend_name, settings())
    reporter = JobReporter(redis, job_id)
    started = float(redis.hget(keys.job(job_id), "started") or time.time())
    return polling.poll(
        redis, job_id, backend, reporter, settings(), lambda video: hand_back(redis, reporter, job_id, video, started)
    )


def hand_back(redis: Redis, reporter: JobReporter, job_id: str, video: Video, started: float) -> str:
    """The video and its metadata into Redis for the collector."""
    size = len(video.mp4) + len(video.poster)
    if size > settings().result_max_bytes:
        reporter.end(
            "failed", error=f"the video is {size // 2**20} MB, over the {settings().result_max_bytes // 2**20} MB limit"
        )
        return "failed"
    meta = {
        "model": video.model,
        "width": video.width,
        "height": video.height,
        "num_frames": video.num_frames,
        "fps": video.fps,
        "has_audio": video.has_audio,
        "extra": video.extra,
        "started": started,
        "finished": time.time(),
    }
    with redis.pipeline() as pipe:
        pipe.hset(keys.result(job_id), mapping={"video": video.mp4, "poster": video.poster, "meta": json.dumps(meta)})
        pipe.expire(keys.result(job_id), settings().result_ttl)
        pipe.hset(keys.job(job_id), mapping={"progress": 0.99, "message": "saving"})
        pipe.lpush(keys.COLLECT, job_id)
        pipe.execute()
    return "done"
