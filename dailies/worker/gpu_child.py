"""The GPU side of ZeroGPU: what runs in the process `spaces` forks for each lent GPU.

A ZeroGPU Space has no GPU between requests: the platform lends one only to a `@spaces.GPU`
function, for the duration it asks for, charged to the visitor whose request is in context. The
function runs in a child process; here it runs the backend exactly as a worker would and yields
progress, beats and the finished video back over `spaces`' pipe. The app's request driver
(dailies/app/zerogpu.py) imports this module only on a ZeroGPU Space, at start, before anything
touches CUDA (the app never imports torch itself).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import spaces  # before torch: on ZeroGPU it patches torch's CUDA for the app process

import backends
from backends.base import Cancelled, GenerationError, Video
from dailies.contract.settings import SAME_PICTURE, Settings, speed_env_name
from dailies.contract.spec import JobSpec

log = logging.getLogger("dailies.worker.gpu_child")
BEAT_S = 1.0  # the GPU child yields at least this often, so a cancel stops it even between slow steps


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


def gpu_settings(settings: Settings) -> Settings:
    """The settings the GPU process runs with: never `compile` (ZeroGPU does not support
    torch.compile, on by default on a GPU elsewhere), the other speed features as set."""
    speed = dict(settings.speed)
    speed.setdefault(speed_env_name(), SAME_PICTURE)
    kept = tuple(sorted((name, tuple(f for f in features if f != "compile")) for name, features in speed.items()))
    return replace(settings, speed=kept)


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
    return backends.get(spec.backend, settings).gpu_seconds(spec)


# One decorated function per GPU size (spaces caches by function, so these are two functions).
@spaces.GPU(duration=_duration, size="large")
def _on_large(spec: JobSpec, settings: Settings) -> Iterator[GpuEvent]:
    yield from _generate(spec, settings)


@spaces.GPU(duration=_duration, size="xlarge")
def _on_xlarge(spec: JobSpec, settings: Settings) -> Iterator[GpuEvent]:
    yield from _generate(spec, settings)


def on_gpu(spec: JobSpec, settings: Settings) -> Iterator[GpuEvent]:
    """The job on a lent GPU of the size its checkpoint declares (closing it stops the GPU task)."""
    large = backends.get(spec.backend, settings).gpu_cost(spec).size == "large"
    return (_on_large if large else _on_xlarge)(spec, gpu_settings(settings))
