"""ZeroGPU mode: the open models run inside the visitor's own request, on a GPU lent per call.

A ZeroGPU Space (`SPACES_ZERO_GPU=true`) has no GPU between requests: the platform lends one only
to a `@spaces.GPU` function, for the duration it asks for, charged to the quota of the visitor
whose `X-IP-Token` is in the Gradio request in context. So an open-model job is recorded in Redis
as usual but never queued: the app calls the GPU function itself, in the visitor's Generate event
(or, for `POST /api/v1/jobs`, in a thread carrying the API request as Gradio's request context).
`spaces` forks a child process for the call; the child runs the backend exactly as a worker
would and yields progress and the finished video back over a pipe; the app writes them to the
job's hash and hands the video to the collector the way a worker does. This module is the one
place the app side runs the worker's part. Hosted and preview backends keep the queue.

Off ZeroGPU `spaces.GPU` returns the function untouched and nothing here runs. `spaces` must be
imported before anything touches CUDA; the app side never imports torch itself, so it is.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from contextvars import copy_context
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal

import spaces  # before torch: on ZeroGPU it patches torch's CUDA for the app process
from spaces.config import Config

import backends
from backends.base import Availability, Backend, Cancelled, GenerationError, Video
from backends.local_model import NO_GPU
from dailies.contract import keys
from dailies.contract.settings import SAME_PICTURE, Settings, speed_env_name
from dailies.contract.spec import JobSpec
from dailies.worker.runner import JobReporter, hand_back

log = logging.getLogger("dailies.app.zerogpu")

BEAT_S = 1.0  # the GPU child yields at least this often, so a cancel stops it even between slow steps
GpuSize = Literal["large", "xlarge"]
QUOTA_NOTE = "anonymous visitors get 2 min a day, signed-in free accounts 5 min, PRO 40 min"


def enabled() -> bool:
    """This app runs on a ZeroGPU Space (as `spaces` itself decides it)."""
    return Config.zero_gpu


def runs_in_request(backend: Backend) -> bool:
    return enabled() and backend.kind == "open"


def availability(backend: Backend) -> Availability:
    """An open model is usable when its packages are installed: the GPU is lent per call, so none is visible now."""
    local = backend.availability()
    return Availability(True) if local.usable or local.reason.startswith(NO_GPU) else local


# -- GPU time ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """What one checkpoint costs on a ZeroGPU card: seconds per step at a reference workload."""

    step_s: float  # one denoising step at the reference size and frames
    pixels: int  # width * height * frames of the reference
    fixed_s: float  # loading the weights onto the lent GPU, the text encoder and the VAE decode
    size: GpuSize = "large"  # "xlarge" (96 GB, twice the quota) for checkpoints that do not fit 48 GB


# Estimates from the published timings (REFERENCE.md, on H100) scaled to the ZeroGPU card. Asking
# for too little gets the task aborted; asking for too much spends the visitor's quota on nothing.
COSTS: dict[tuple[str, str], Cost] = {
    ("cogvideox", "2b"): Cost(1.0, 720 * 480 * 49, 25),
    ("cogvideox", "5b"): Cost(2.0, 720 * 480 * 49, 35),
    ("cogvideox", "1.5-5b"): Cost(12.0, 1360 * 768 * 81, 35, "xlarge"),
    ("ltx-video", "0.9.1"): Cost(0.5, 704 * 480 * 161, 20),
    ("ltx-video", "0.9.5"): Cost(0.5, 704 * 480 * 161, 20),
    ("ltx-video", "0.9.7-distilled"): Cost(1.5, 704 * 480 * 161, 35),
    ("mochi", "1-preview"): Cost(6.0, 848 * 480 * 163, 45),
    ("wan", "2.1-1.3b"): Cost(1.5, 832 * 480 * 81, 20),
    ("wan", "2.1-14b"): Cost(9.0, 832 * 480 * 81, 60, "xlarge"),
    ("wan", "2.2-5b"): Cost(4.0, 1280 * 704 * 121, 30),
    ("wan", "2.2-a14b"): Cost(9.0, 832 * 480 * 81, 90, "xlarge"),
    # Its `steps` are the first frame's; the later frames' video steps at their default are folded
    # into the step time (5 s at 768p: ~5.5 min on an A100).
    ("pyramid-flow", "384p"): Cost(1.5, 640 * 384 * 121, 30),
    ("pyramid-flow", "768p"): Cost(8.0, 1280 * 768 * 121, 40),
    # No published step times for these two: sized from their parameter counts until measured.
    # LTX-2: 19B with a 12B Gemma-3 text encoder (xlarge); the distilled recipe's second stage is in fixed_s.
    ("ltx-2", "2.0"): Cost(2.5, 768 * 512 * 121, 90, "xlarge"),
    ("ltx-2", "2.0-distilled"): Cost(2.5, 768 * 512 * 121, 90, "xlarge"),
    # HunyuanVideo 1.5: 8.3B with Qwen2.5-VL 7B and ByT5; 720p's activations want the whole card.
    ("hunyuanvideo", "480p"): Cost(3.0, 848 * 480 * 121, 60),
    ("hunyuanvideo", "720p"): Cost(7.0, 1280 * 720 * 121, 60, "xlarge"),
}
MIN_SECONDS = 20
MARGIN = 1.2  # over the estimate: past the duration asked for, the platform may abort the task


# A checkpoint missing above (a test checks there is none) asks generously rather than being aborted.
UNLISTED = Cost(10.0, 1280 * 720 * 121, 60)


def _cost(spec: JobSpec) -> Cost:
    return COSTS.get((spec.backend, spec.params.get("model", "")), UNLISTED)


def _steps(spec: JobSpec, backend: Backend) -> int:
    return spec.params.get("steps") or backend.rules(spec.params.get("model")).steps


def gpu_seconds(spec: JobSpec, backend: Backend) -> int:
    """The GPU duration to ask for: steps times the checkpoint's step time, scaled by size and frames."""
    cost = _cost(spec)
    scale = spec.width * spec.height * spec.num_frames / cost.pixels
    seconds = cost.fixed_s + _steps(spec, backend) * cost.step_s * scale
    # Longer than the platform allows is refused up front, with its reason shown: no cap here.
    return max(MIN_SECONDS, math.ceil(seconds * MARGIN))


def gpu_size(spec: JobSpec) -> GpuSize:
    return _cost(spec).size


def quota_seconds(spec: JobSpec, backend: Backend) -> int:
    """What the visitor's quota is charged: `spaces` scales the duration for the card (a `large`
    slice of the RTX Pro 6000 counts 1.5 times) and the platform counts `xlarge` twice."""
    seconds, size = gpu_seconds(spec, backend), gpu_size(spec)
    if enabled():
        from spaces.zero.client import get_duration_seconds

        seconds = round(get_duration_seconds(timedelta(seconds=seconds), size))
    return seconds * (2 if size == "xlarge" else 1)


def estimate_note(spec: JobSpec, backend: Backend) -> str:
    """The line the page shows before Generate: what this job will take from the visitor's quota."""
    seconds, charged = gpu_seconds(spec, backend), quota_seconds(spec, backend)
    where = " on the 96 GB `xlarge` GPU" if gpu_size(spec) == "xlarge" else ""
    counted = f", counted as **{charged} s**" if charged != seconds else ""
    return (
        f"ZeroGPU: this job asks for about **{seconds} s** of GPU time{where}{counted} against your daily "
        f"quota ({QUOTA_NOTE}). Keep this page open until it finishes."
    )


def gpu_settings(settings: Settings) -> Settings:
    """The settings the GPU process runs with: never `compile` (ZeroGPU does not support
    torch.compile, on by default on a GPU elsewhere), the other speed features as set."""
    speed = dict(settings.speed)
    speed.setdefault(speed_env_name(), SAME_PICTURE)
    kept = tuple(sorted((name, tuple(f for f in features if f != "compile")) for name, features in speed.items()))
    return replace(settings, speed=kept)


# -- the GPU side (a child process forked by `spaces`) --------------------------------------


@dataclass(frozen=True)
class GpuEvent:
    """What the GPU process yields to the app (pickled through `spaces`' pipe)."""

    kind: Literal["progress", "beat", "video", "failed", "canceled"]
    fraction: float = 0.0
    message: str = ""  # progress: the step; failed: the reason, for the user
    video: Video | None = None

    @property
    def last(self) -> bool:
        return self.kind in ("video", "failed", "canceled")


def _generate(spec: JobSpec, settings: Settings) -> Iterator[GpuEvent]:
    """Run the backend as a worker would: progress, a beat at least every `BEAT_S`, then one last event.

    The backend reports by callback, so it runs in a thread; closing this generator (the app
    saw a cancel, or the visitor left) raises the backend's cancel flag and waits for it to stop.
    """
    backend = backends.get(spec.backend, settings)
    events: queue.Queue[GpuEvent] = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            video = backend.generate(spec, lambda f, m="": events.put(GpuEvent("progress", f, m)), stop.is_set)
        except Cancelled:
            events.put(GpuEvent("canceled"))
        except GenerationError as exc:
            # Its message is for the user; an exception through spaces would keep only its class name.
            events.put(GpuEvent("failed", message=str(exc)))
        except Exception:
            log.exception("job %s failed in backend %s on ZeroGPU", spec.id, spec.backend)
            events.put(GpuEvent("failed", message=f"{backend.display_name} failed; the error is in the app's log"))
        else:
            events.put(GpuEvent("video", video=video))

    thread = threading.Thread(target=work, name=f"zerogpu-{spec.id}", daemon=True)
    thread.start()
    try:
        while True:
            try:
                event = events.get(timeout=BEAT_S)
            except queue.Empty:
                event = GpuEvent("beat")
            yield event
            if event.last:
                return
    finally:
        stop.set()
        thread.join()


def _duration(spec: JobSpec, settings: Settings) -> int:
    return gpu_seconds(spec, backends.get(spec.backend, settings))


# One decorated function per GPU size (spaces caches by function, so these are two functions).
@spaces.GPU(duration=_duration, size="large")
def _on_large(spec: JobSpec, settings: Settings) -> Iterator[GpuEvent]:
    yield from _generate(spec, settings)


@spaces.GPU(duration=_duration, size="xlarge")
def _on_xlarge(spec: JobSpec, settings: Settings) -> Iterator[GpuEvent]:
    yield from _generate(spec, settings)


# -- the app side ---------------------------------------------------------------------------


class Refused(Exception):
    """The platform refused or aborted the GPU task (over quota, no GPU, aborted): the message is for the visitor."""


def run(redis: Any, settings: Settings, spec: JobSpec) -> Iterator[tuple[float, str]]:
    """Run one recorded job on a lent GPU, writing its hash as a worker would.

    Yields the job's (progress, message) at every step and at least every `BEAT_S`. Must run
    where the visitor's Gradio request is in context (their quota). Closing the iterator (the
    visitor left) stops the GPU task; so does the job's cancel flag.
    """
    import gradio as gr

    reporter = JobReporter(redis, spec.id)
    key = keys.job(spec.id)
    if reporter.cancelled():
        reporter.end("canceled")
        return
    started = time.time()
    state = GpuEvent("progress", 0.0, "waiting for a GPU")
    redis.hset(key, mapping={"status": "running", "started": started, "heartbeat": started, "message": state.message})
    events = (_on_xlarge if gpu_size(spec) == "xlarge" else _on_large)(spec, gpu_settings(settings))
    ended = False
    try:
        for event in events:
            redis.hset(key, "heartbeat", time.time())
            if reporter.cancelled():
                event = GpuEvent("canceled")
            if event.last:
                # spaces stops the GPU process at its next yield and gives the GPU back before this returns.
                events.close()
                _end(redis, reporter, spec, event, started)
                ended = True
                return
            if event.kind == "progress":
                state = event
                reporter.progress(state.fraction, state.message)
            yield state.fraction, state.message
    except gr.Error as exc:
        # spaces' own refusals (quota, no GPU, aborted task) arrive as gr.Error with a message for people.
        ended = True
        reporter.end("failed", error=str(exc.message))
        raise Refused(str(exc.message)) from None
    except Exception:
        ended = True
        log.exception("the ZeroGPU task of job %s failed", spec.id)
        reporter.end("failed", error="the GPU task failed; the error is in the app's log")
        raise
    finally:
        if not ended:  # closed by the caller: the visitor left
            events.close()
            reporter.end("canceled", error="the page that ran this job was closed")


def _end(redis: Any, reporter: JobReporter, spec: JobSpec, event: GpuEvent, started: float) -> None:
    """The job's end state from the GPU task's last event; a video goes to the collector as a worker's does."""
    if event.video is not None:
        hand_back(redis, reporter, spec.id, event.video, started)
    elif event.kind == "failed":
        reporter.end("failed", error=event.message)
    else:
        reporter.end("canceled")


def run_for_api(redis: Any, settings: Settings, spec: JobSpec, request: Any) -> None:
    """Run a job submitted through the JSON API in the background, as `request`'s visitor (their X-IP-Token)."""
    import gradio as gr
    from gradio.context import LocalContext

    context = copy_context()
    context.run(LocalContext.request.set, gr.Request(request))

    def consume() -> None:
        try:
            for _ in run(redis, settings, spec):
                pass
        except Refused as exc:
            log.info("ZeroGPU refused job %s: %s", spec.id, exc)

    threading.Thread(target=context.run, args=(consume,), name=f"zerogpu-api-{spec.id}", daemon=True).start()
