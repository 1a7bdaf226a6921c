"""The functions RQ runs on a worker: one job through one backend (`run`), and one poll step of a
hosted job (`poll`). RQ finds them by these dotted paths, which jobs queued before an upgrade
also hold: keep them importable here.

The job's record is written only through `dailies.contract.job_record`. The result (MP4, poster,
metadata) goes into `dailies:result:<id>` with a TTL and the id onto the collect list, so workers
need no shared disk and no Hub token.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import cache

from redis import Redis
from rq import get_current_job
from rq.timeouts import JobTimeoutException

import backends
from backends.base import Cancelled, GenerationError, Video
from backends.hosted_common import PolledBackend
from dailies.contract.job_record import Field, JobRecord, JobStatus, Reporter, Superseded
from dailies.contract.settings import Settings
from dailies.contract.spec import JobSpec
from dailies.worker import polling

log = logging.getLogger("dailies.worker.runner")


@cache
def settings() -> Settings:
    return Settings.from_env()


def run(spec: JobSpec) -> str:
    rq_job = get_current_job()
    redis: Redis = rq_job.connection
    record = JobRecord(redis, spec.id)
    if record.cancel_requested():
        record.end(JobStatus.CANCELED)
        return "canceled"
    started = time.time()
    # Counted so that the app runs a job whose worker died once more, not for ever; the count is
    # this run's token, so a stalled run that wakes after its job was handed on writes nothing.
    if record.start() is None:
        return "gone"  # canceled or failed while it waited
    if spec.image is None:  # queued since issue 20: the image waits beside the record (older jobs hold it)
        spec = replace(spec, image=record.image())
    reporter = Reporter(record)
    backend = backends.get(spec.backend, settings())
    if isinstance(backend, PolledBackend):
        return polling.submit(redis, spec, backend, reporter, settings())
    try:
        video = backend.generate(spec, reporter.progress, reporter.cancelled)
    except (Cancelled, Superseded):
        reporter.end(JobStatus.CANCELED)
        return "canceled"
    except GenerationError as exc:
        return polling.fail(redis, reporter, backend, exc)
    except JobTimeoutException:
        reporter.end(JobStatus.FAILED, error=f"the job ran longer than its limit of {rq_job.timeout} s")
        raise
    except Exception:
        log.exception("job %s failed in backend %s", spec.id, spec.backend)
        reporter.end(JobStatus.FAILED, error=f"{backend.display_name} failed; the error is in the worker's log")
        raise
    return hand_back(reporter, video, started)


def poll(job_id: str, backend_name: str) -> str:
    """One poll step of a hosted job (enqueued by the worker's dispatcher when it is due)."""
    redis: Redis = get_current_job().connection
    backend = backends.get(backend_name, settings())
    raw = JobRecord(redis, job_id).read()
    run_token = raw.get(Field.ATTEMPTS)
    record = JobRecord(redis, job_id, int(run_token) if run_token else None)
    started = float(raw.get(Field.STARTED) or time.time())
    reporter = Reporter(record)
    return polling.poll(redis, job_id, backend, reporter, settings(), lambda video: hand_back(reporter, video, started))


def hand_back(reporter: Reporter, video: Video, started: float) -> str:
    """The video to the collector, within the result limits."""
    handed = reporter.hand_back(video.mp4, video.poster, video.meta(started, reporter.record.run), settings())
    return "done" if handed is JobStatus.RUNNING else str(handed or "gone")
