"""The runtime every local model shares, on the worker side: load, place, keep, run, export.

Weights resolution comes from the backend; here: device and dtype, memory placement and the
offload modes, the resident set within its memory budget (least recently used goes first),
out-of-memory handling, progress, cancel between steps, seeding, timings, peak VRAM and the
MP4 + poster. A pipeline is anything with the diffusers pipeline surface, so our own classes
run here too. torch is imported inside the functions: importing this module stays light.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from backends.base import (
    IMAGE_TO_VIDEO,
    TEXT_TO_VIDEO,
    CancelCheck,
    Cancelled,
    Checkpoint,
    GenerationError,
    Progress,
    Video,
)
from backends.local_model import NO_GPU, LocalModelBackend, PipelineClass, model_label
from dailies.contract.images import ImageRefused, start_image
from dailies.contract.media import encode_mp4, poster_jpeg
from dailies.contract.settings import Settings, model_env_name
from dailies.contract.spec import JobSpec

log = logging.getLogger("dailies.models")

HEADROOM_GB = 6.0  # activations and the VAE decode on top of the weights, at published sizes


def memory_budget_bytes(settings: Settings, device: str, held: int) -> int:
    """DAILIES_MODEL_MEMORY_GB, else 80% of what is free plus what the resident models hold.

    Free counts RAM too: the weights of an offloaded model sit in RAM between steps.
    """
    if settings.model_memory_gb is not None:
        return int(settings.model_memory_gb * 2**30)
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if device == "cuda":
        import torch

        free += torch.cuda.mem_get_info()[0]
    return int((free + held) * 0.8)


def _weights_bytes(module: Any) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters()) if hasattr(module, "parameters") else 0


@dataclass
class Loaded:
    pipe: Any
    bytes: int
    memory_mode: str
    load_s: float
    speed: tuple[str, ...] = ()  # the speed features switched on (dailies/worker/speed.py)


class ResidentPipelines:
    """Pipelines loaded in this worker process, least recently used first, within a memory budget."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple, Loaded] = OrderedDict()
        self._lock = threading.RLock()  # an image-to-video load may load its text-to-video base

    def get(self, key: tuple, load: Callable[[], Loaded], settings: Settings, device: str) -> tuple[Loaded, bool]:
        """The pipeline for `key` and whether this call loaded it."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], False
            item = load()
            self._items[key] = item
            self._evict(settings, device)
            return item, True

    def _evict(self, settings: Settings, device: str) -> None:
        held = sum(i.bytes for i in self._items.values())
        budget = memory_budget_bytes(settings, device, held)
        while len(self._items) > 1 and held > budget:
            key, item = self._items.popitem(last=False)
            log.info("evicting %s (%.1f GB) to stay within the model memory budget", key[1], item.bytes / 2**30)
            held -= item.bytes
            del item
            _free_memory(device)


RESIDENT = ResidentPipelines()


def _free_memory(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def resolve(cls: PipelineClass) -> type:
    """A class as is; "a.b.C" imported from its module; a bare name from diffusers."""
    if isinstance(cls, type):
        return cls
    module, _, name = cls.rpartition(".")
    return getattr(importlib.import_module(module or "diffusers"), name)


def _device(settings: Settings) -> str:
    if settings.device == "cpu":
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        raise GenerationError(f"{NO_GPU} (or this torch build has no CUDA support)")
    return "cuda"


def _place(pipe: Any, settings: Settings, device: str, size: int) -> str:
    """Move the pipeline to the GPU whole, or offload it, from DAILIES_MEMORY_MODE and free VRAM."""
    if device == "cpu":
        return "cpu"
    import torch

    mode = settings.memory_mode
    if mode == "auto":
        free = torch.cuda.mem_get_info()[0]
        largest = max(_weights_bytes(c) for c in pipe.components.values())
        headroom = HEADROOM_GB * 2**30
        if size + headroom < free:
            mode = "gpu"
        elif largest + headroom < free:
            mode = "model-offload"  # one component at a time on the GPU
        else:
            mode = "sequential-offload"  # layer by layer: slowest, smallest
    if mode == "gpu":
        pipe.to("cuda")
    elif mode == "model-offload":
        pipe.enable_model_cpu_offload()
    else:
        pipe.enable_sequential_cpu_offload()
    return mode


def _load(backend: LocalModelBackend, checkpoint: Checkpoint, mode: str, device: str) -> Loaded:
    import torch

    source = backend.weights(checkpoint, mode)
    cls = resolve(backend.pipeline_class(checkpoint, mode))
    dtype = getattr(torch, checkpoint.dtype) if device == "cuda" else torch.float32
    started = time.monotonic()
    if mode == IMAGE_TO_VIDEO and source == backend.weights(checkpoint, TEXT_TO_VIDEO) and hasattr(cls, "from_pipe"):
        # Same weights: reuse the resident text-to-video components, no second copy.
        base, _ = _resident(backend, checkpoint, TEXT_TO_VIDEO, device)
        return Loaded(cls.from_pipe(base.pipe), 0, base.memory_mode, time.monotonic() - started, base.speed)
    log.info("loading %s %s from %s (%s, %s)", backend.name, mode, source, device, dtype)
    try:
        # The published repo's file variant (e.g. Mochi's bf16 files); an override folder has plain files.
        files = checkpoint.weights_variant if source in (checkpoint.repo, checkpoint.i2v) else None
        dtypes = {"default": dtype, "vae": torch.float32} if backend.vae_fp32 else dtype
        pipe = cls.from_pretrained(source, dtype=dtypes, variant=files)
    except (OSError, ValueError):
        log.exception("could not load %s from %s", backend.name, source)
        raise GenerationError(
            f"could not load the {backend.display_name} weights {model_label(source)!r} (the reason is in the "
            f"worker's log); set {model_env_name(backend.name, mode)} to a Hub repo id or a local folder in "
            "diffusers layout, and HF_HUB_OFFLINE=1 on a machine without internet"
        ) from None
    vae = getattr(pipe, "vae", None)
    if hasattr(vae, "enable_tiling"):
        vae.enable_tiling()  # the final decode is where these models run out of memory
    pipe.set_progress_bar_config(disable=True)
    size = sum(_weights_bytes(c) for c in pipe.components.values())
    memory_mode = _place(pipe, backend.settings, device, size)
    switched = _speed_up(backend, checkpoint, mode, pipe, device)
    return Loaded(pipe, size, memory_mode, time.monotonic() - started, switched)


def _speed_up(backend: LocalModelBackend, checkpoint: Checkpoint, mode: str, pipe: Any, device: str) -> tuple[str, ...]:
    """Switch on the speed features the settings ask for; a compiled model's warm-up is paid here, at load."""
    import torch

    from dailies.worker import speed

    switched = []
    for feature in backend.settings.speed_for(backend.name, checkpoint.name, device):
        try:
            log.info("%s %s: %s", backend.name, checkpoint.name, speed.switch_on(pipe, feature, device))
            switched.append(feature)
        except Exception:  # a feature this model or card does not take leaves the model as it was
            log.warning("%s %s: could not switch %s on", backend.name, checkpoint.name, feature, exc_info=True)
    if "compile" in switched and mode == TEXT_TO_VIDEO:
        # Two steps at the checkpoint's default size and length: the shapes most jobs ask for.
        width, height = checkpoint.size.default
        warm = JobSpec(
            "warm-up",
            backend.name,
            "warm-up",
            "",
            0,
            width,
            height,
            checkpoint.frames.default,
            checkpoint.fps,
            params={"model": checkpoint.name},
        )
        started = time.monotonic()
        with torch.inference_mode():  # as jobs run: a different grad mode would compile again
            pipe(**_call_args(backend, warm, checkpoint, steps=2, guidance=checkpoint.guidance), output_type="latent")
        log.info("%s %s: compiled and warmed up in %.1f s", backend.name, checkpoint.name, time.monotonic() - started)
    return tuple(switched)


def _call_args(
    backend: LocalModelBackend, request: JobSpec, checkpoint: Checkpoint, steps: int | None, guidance: float | None
) -> dict[str, Any]:
    """The pipeline call for a request (without its output type, step callback or image)."""
    import torch

    return {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt or None,
        "height": request.height,
        "width": request.width,
        "num_frames": request.num_frames,
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "generator": torch.Generator("cpu").manual_seed(request.seed or 0),
        **backend.call_args(request, checkpoint),
    }


def _resident(backend: LocalModelBackend, checkpoint: Checkpoint, mode: str, device: str) -> tuple[Loaded, bool]:
    key = (backend.name, backend.weights(checkpoint, mode), mode, device)
    return RESIDENT.get(key, lambda: _load(backend, checkpoint, mode, device), backend.settings, device)


def generate(backend: LocalModelBackend, request: JobSpec, progress: Progress, cancelled: CancelCheck) -> Video:
    """One video from `request` with the backend's pipeline for the request's checkpoint and mode."""
    import torch

    checkpoint = backend.rules(request.params.get("model"))
    mode = IMAGE_TO_VIDEO if request.image is not None else TEXT_TO_VIDEO
    if mode not in checkpoint.modes:  # validation refuses these; a job queued before a rule changed may not
        raise GenerationError(f"{checkpoint.label or checkpoint.name} does not do {mode}")
    image = decode_image(request.image, request.width, request.height) if request.image is not None else None
    device = _device(backend.settings)
    progress(0.0, f"loading {backend.display_name} {checkpoint.name}")
    loaded, fresh = _resident(backend, checkpoint, mode, device)
    if cancelled():
        raise Cancelled()
    steps = request.params.get("steps") or checkpoint.steps
    guidance = request.params.get("guidance")
    guidance = checkpoint.guidance if guidance is None else guidance
    total = backend.total_steps(request, checkpoint, steps)

    def on_step(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        # Raising here stops at once; pipe._interrupt would still run the (long) VAE decode.
        if cancelled():
            raise Cancelled()
        progress(0.05 + 0.85 * min(step + 1, total) / total, f"step {step + 1}/{total}")
        return tensors

    args = {
        **_call_args(backend, request, checkpoint, steps, guidance),
        "output_type": "np",
        "callback_on_step_end": on_step,
    }
    if image is not None:
        args["image"] = image
    started = time.monotonic()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    try:
        with torch.inference_mode():
            output = backend.run(loaded.pipe, args, request, checkpoint)
    except torch.OutOfMemoryError:
        _free_memory(device)
        raise GenerationError(
            f"out of GPU memory at {request.width}x{request.height}, {request.num_frames} frames "
            f"(memory mode {loaded.memory_mode}); try fewer frames, a smaller size, or "
            "DAILIES_MEMORY_MODE=sequential-offload"
        ) from None
    if cancelled():
        raise Cancelled()
    generate_s = time.monotonic() - started
    progress(0.95, "encoding")
    frames = to_uint8(np.asarray(output.frames)[0])
    sound = backend.sound(loaded.pipe, output, request)
    extra = {
        "timings": {"load_s": round(loaded.load_s if fresh else 0.0, 3), "generate_s": round(generate_s, 3)},
        "device": device,
        "memory_mode": loaded.memory_mode,
        "speed": list(loaded.speed),
        "mode": mode,
        "steps": steps,
        "guidance": guidance,
    }
    if device == "cuda":
        extra["peak_vram_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return Video(
        mp4=encode_mp4(frames, request.fps, sound),
        poster=poster_jpeg(frames[len(frames) // 2]),
        model=model_label(backend.weights(checkpoint, mode)),
        width=frames.shape[2],
        height=frames.shape[1],
        num_frames=len(frames),
        fps=request.fps,
        extra=extra,
        has_audio=sound is not None,
    )


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pipeline frames (T, H, W, 3) floats in [0, 1] to uint8 for the H.264 encoder."""
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def decode_image(data: bytes, width: int, height: int) -> Image.Image:
    """The start image of an image-to-video job, checked again as at submit (a job queued before
    the checks, or sent past the app), as upright RGB at the video's size."""
    try:
        return start_image(data, width, height)
    except ImageRefused as exc:
        raise GenerationError(str(exc)) from None
