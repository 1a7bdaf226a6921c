"""ZeroGPU mode, app side: open models run inside the visitor's own request, on a GPU lent per call.

A ZeroGPU Space (`SPACES_ZERO_GPU=true`) has no GPU between requests: the platform lends one only
to a `@spaces.GPU` function, charged to the quota of the visitor whose `X-IP-Token` is in the
Gradio request in context. So an open-model job is recorded in Redis as usual but never queued
(`Accepted.in_request`): the page event that submitted it drives it here (`run`), writing its
record through the job record as a worker would, while the GPU side (dailies/worker/gpu_child.py,
imported only on ZeroGPU) runs the backend in the child process `spaces` forks. A JSON API call
has no page to drive it: there such a job is refused with a clear message (Jobs.prepare).

Off ZeroGPU nothing here imports `spaces` or any module of `dailies/worker`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from backends.base import Availability, Backend
from backends.local_model import NO_GPU
from dailies.contract.job_record import JobRecord, JobStatus, Reporter
from dailies.contract.settings import Settings
from dailies.contract.spec import JobSpec

log = logging.getLogger("dailies.app.zerogpu")
QUOTA_NOTE = "anonymous visitors get 2 min a day, signed-in free accounts 5 min, PRO 40 min"


def enabled() -> bool:
    """This app runs on a ZeroGPU Space (read as `spaces` itself reads it, without importing it)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def prepare() -> None:
    """On ZeroGPU, at start: the GPU functions exist before anything touches CUDA."""
    if enabled():
        from dailies.worker import gpu_child  # noqa: F401


def runs_in_request(backend: Backend) -> bool:
    return enabled() and backend.kind == "open"


def availability(backend: Backend) -> Availability:
    """An open model is usable when its packages are installed: the GPU is lent per call, so none is visible now."""
    local = backend.availability()
    return Availability(True) if local.usable or local.reason.startswith(NO_GPU) else local


def quota_seconds(spec: JobSpec, backend: Backend) -> int:
    """What the visitor's quota is charged: `spaces` scales the duration for the card (a `large`
    slice of the RTX Pro 6000 counts 1.5 times) and the platform counts `xlarge` twice."""
    seconds, size = backend.gpu_seconds(spec), backend.gpu_cost(spec).size
    if enabled():
        from spaces.zero.client import get_duration_seconds

        seconds = round(get_duration_seconds(timedelta(seconds=seconds), size))
    return seconds * (2 if size == "xlarge" else 1)


def estimate_note(spec: JobSpec, backend: Backend) -> str:
    """The line the page shows before Generate: what this job will take from the visitor's quota."""
    seconds, charged = backend.gpu_seconds(spec), quota_seconds(spec, backend)
    where = " on the 96 GB `xlarge` GPU" if backend.gpu_cost(spec).size == "xlarge" else ""
    counted = f", counted as **{charged} s**" if charged != seconds else ""
    return (
        f"ZeroGPU: this job asks for about **{seconds} s** of GPU time{where}{counted} against your daily "
        f"quota ({QUOTA_NOTE}). Keep this page open until it finishes."
    )


class Refused(Exception):
    """The platform refused or aborted the GPU task (over quota, no GPU, aborted): the message is for the visitor."""


def run(redis: Any, settings: Settings, spec: JobSpec) -> Iterator[tuple[float, str]]:
    """Run one recorded job on a lent GPU, writing its record as a worker would.

    Yields the job's (progress, message) at every step and at least every beat. Must run where
    the visitor's Gradio request is in context (their quota). Closing the iterator (the visitor
    left) stops the GPU task; so does the job's cancel flag.
    """
    import gradio as gr

    from dailies.worker.gpu_child import GpuEvent, on_gpu

    record = JobRecord(redis, spec.id)
    if record.cancel_requested():
        record.end(JobStatus.CANCELED)
        return
    reporter = Reporter(record)
    state = GpuEvent("progress", 0.0, "waiting for a GPU")
    started = time.time()
    if record.start(state.message) is None:
        return  # canceled before it began
    events = on_gpu(spec, settings)
    ended = False
    try:
        for event in events:
            record.update(heartbeat=time.time())
            if reporter.cancelled():
                event = GpuEvent("canceled")
            if event.last:
                # spaces stops the GPU process at its next yield and gives the GPU back before this returns.
                events.close()
                ended = True
                if event.video is not None:
                    video = event.video
                    reporter.hand_back(video.mp4, video.poster, video.meta(started, record.run), settings)
                elif event.kind == "failed":
                    reporter.end(JobStatus.FAILED, error=event.message)
                else:
                    reporter.end(JobStatus.CANCELED)
                return
            if event.kind == "progress":
                state = event
                reporter.progress(state.fraction, state.message)
            yield state.fraction, state.message
    except gr.Error as exc:
        # spaces' own refusals (quota, no GPU, aborted task) arrive as gr.Error with a message for people.
        ended = True
        reporter.end(JobStatus.FAILED, error=str(exc.message))
        raise Refused(str(exc.message)) from None
    except Exception:
        ended = True
        log.exception("the ZeroGPU task of job %s failed", spec.id)
        reporter.end(JobStatus.FAILED, error="the GPU task failed; the error is in the app's log")
        raise
    finally:
        if not ended:  # closed by the caller: the visitor left
            events.close()
            reporter.end(JobStatus.CANCELED, error="the page that ran this job was closed")
