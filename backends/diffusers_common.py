"""The part of the open-model backends that every diffusers family shares, written once.

Weights resolution, device and dtype, memory modes, VAE tiling, progress, cancel, seeding and
export live here; a family module (cogvideox.py, ltx_video.py, mochi.py, wan.py) only declares
its rules, its variants and the pipeline classes. Importing this module never imports torch:
the app imports backends for their declarations, and only a worker loads models.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.base import (
    IMAGE_TO_VIDEO,
    TEXT_TO_VIDEO,
    Availability,
    Backend,
    CancelCheck,
    Cancelled,
    GenerationError,
    Param,
    Progress,
    Video,
)
from dailies.contract.media import encode_mp4, poster_jpeg
from dailies.contract.spec import JobSpec

log = logging.getLogger("dailies.models")

MEMORY_MODES = ("auto", "gpu", "model-offload", "sequential-offload")
HEADROOM_GB = 6.0  # activations and the VAE decode on top of the weights, at published sizes
NO_GPU = "no CUDA GPU on this machine; set DAILIES_DEVICE=cpu to run on the CPU (slow)"
SAME_WEIGHTS = "same"  # Variant.i2v: the text-to-video weights also do image-to-video


@dataclass(frozen=True)
class Variant:
    """One published checkpoint of a family (the `model` parameter picks it)."""

    name: str
    repo: str
    i2v: str | None = None  # image-to-video weights: a repo id, SAME_WEIGHTS, or None (no i2v)
    dtype: str = "bfloat16"  # on CUDA; the CPU runs float32
    steps: int = 50
    guidance: float = 6.0
    weights_variant: str | None = None  # e.g. "bf16" files next to the fp32 ones in the repo


def env_name(backend: str, mode: str = TEXT_TO_VIDEO) -> str:
    """DAILIES_MODEL_<BACKEND> (and ..._I2V for separate image-to-video weights)."""
    base = "DAILIES_MODEL_" + backend.upper().replace("-", "_")
    return base + "_I2V" if mode == IMAGE_TO_VIDEO else base


def gpu_visible() -> bool:
    """An NVIDIA GPU is visible to this machine (decided without importing torch)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return Path("/dev/nvidia0").exists() or (gpus.is_dir() and any(gpus.iterdir()))


def memory_budget_bytes(device: str, held: int) -> int:
    """DAILIES_MODEL_MEMORY_GB, else 80% of what is free plus what the resident models hold.

    Free counts RAM too: the weights of an offloaded model sit in RAM between steps.
    """
    raw = os.environ.get("DAILIES_MODEL_MEMORY_GB", "").strip()
    if raw:
        return int(float(raw) * 2**30)
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if device == "cuda":
        import torch

        free += torch.cuda.mem_get_info()[0]
    return int((free + held) * 0.8)


def _weights_bytes(module: Any) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters()) if hasattr(module, "parameters") else 0


@dataclass
class _Loaded:
    pipe: Any
    bytes: int
    memory_mode: str
    load_s: float


class ResidentPipelines:
    """Pipelines loaded in this worker process, least recently used first, within a memory budget."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple, _Loaded] = OrderedDict()
        self._lock = threading.RLock()  # an image-to-video load may load its text-to-video base

    def get(self, key: tuple, load: Callable[[], _Loaded], device: str) -> tuple[_Loaded, bool]:
        """The pipeline for `key` and whether this call loaded it."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key], False
            item = load()
            self._items[key] = item
            self._evict(device)
            return item, True

    def _evict(self, device: str) -> None:
        held = sum(i.bytes for i in self._items.values())
        budget = memory_budget_bytes(device, held)
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


def model_params(variants: tuple[Variant, ...]) -> tuple[Param, ...]:
    """The `model`, `steps` and `guidance` parameters every family takes (empty: the checkpoint's default)."""
    steps = ", ".join(f"{v.name}: {v.steps}" for v in variants)
    guidance = ", ".join(f"{v.name}: {v.guidance:g}" for v in variants)
    return (
        Param(
            "model",
            str,
            variants[0].name,
            choices=tuple(v.name for v in variants),
            label="Model",
            help="Which published checkpoint.",
        ),
        Param(
            "steps",
            int,
            None,
            minimum=1,
            maximum=200,
            label="Steps",
            help=f"Denoising steps; empty: the checkpoint's default ({steps}).",
        ),
        Param(
            "guidance",
            float,
            None,
            minimum=0.0,
            maximum=20.0,
            label="Guidance",
            help=f"Classifier-free guidance; empty: the checkpoint's default ({guidance}).",
        ),
    )


class DiffusersBackend(Backend):
    """A diffusers video family: subclasses declare rules, variants and pipeline class names."""

    family = "open"
    negative_prompt = True
    pipeline: ClassVar[str]  # diffusers class for text-to-video, or a dotted path to a class of our own
    i2v_pipeline: ClassVar[str | None] = None  # diffusers class (or dotted path) for image-to-video
    variants: ClassVar[tuple[Variant, ...]]  # the first is the default
    vae_fp32: ClassVar[bool] = False  # keep the VAE in float32 (Wan's model card asks for it)

    def availability(self) -> Availability:
        for package in ("torch", "diffusers", "transformers"):
            if find_spec(package) is None:
                return Availability(False, f"{package} is not installed: pip install -r requirements-models.txt")
        if self.settings.device != "cpu" and not gpu_visible():
            return Availability(False, NO_GPU)
        return Availability(True)

    # -- hooks a family may override -------------------------------------------------------

    def call_args(self, request: JobSpec, variant: Variant) -> dict[str, Any]:
        """Extra keyword arguments for this family's pipeline call."""
        return {}

    def total_steps(self, request: JobSpec, variant: Variant, steps: int) -> int:
        """How many step callbacks one video makes (a staged pipeline makes more than `steps`)."""
        return steps

    # -- the shared path -------------------------------------------------------------------

    def variant(self, name: str | None) -> Variant:
        for v in self.variants:
            if v.name == (name or self.variants[0].name):
                return v
        raise GenerationError(f"unknown model {name!r}; choose one of {', '.join(v.name for v in self.variants)}")

    def weights(self, variant: Variant, mode: str) -> str:
        """Where the weights come from: the environment override, else the published repo."""
        if mode == IMAGE_TO_VIDEO:
            override = os.environ.get(env_name(self.name, IMAGE_TO_VIDEO), "").strip()
            if override:
                return override
            if variant.i2v is None:
                raise GenerationError(f"{self.display_name} {variant.name} has no image-to-video model")
            if variant.i2v != SAME_WEIGHTS:
                return variant.i2v
        return os.environ.get(env_name(self.name), "").strip() or variant.repo

    def device(self) -> str:
        if self.settings.device == "cpu":
            return "cpu"
        import torch

        if not torch.cuda.is_available():
            raise GenerationError(f"{NO_GPU} (or this torch build has no CUDA support)")
        return "cuda"

    def _load(self, variant: Variant, mode: str, device: str) -> _Loaded:
        import torch

        source = self.weights(variant, mode)
        dtype = getattr(torch, variant.dtype) if device == "cuda" else torch.float32
        started = time.monotonic()
        shared = mode == IMAGE_TO_VIDEO and source == self.weights(variant, TEXT_TO_VIDEO)
        if shared:
            # Same weights: reuse the resident text-to-video components, no second copy.
            base, _ = self._resident(variant, TEXT_TO_VIDEO, device)
            pipe = _pipeline_class(self.i2v_pipeline).from_pipe(base.pipe)
            return _Loaded(pipe, 0, base.memory_mode, time.monotonic() - started)
        cls = _pipeline_class(self.i2v_pipeline if mode == IMAGE_TO_VIDEO else self.pipeline)
        log.info("loading %s %s from %s (%s, %s)", self.name, mode, source, device, dtype)
        try:
            # The published repo's file variant (e.g. Mochi's bf16 files); an override folder has plain files.
            files = variant.weights_variant if source in (variant.repo, variant.i2v) else None
            dtypes = {"default": dtype, "vae": torch.float32} if self.vae_fp32 else dtype
            pipe = cls.from_pretrained(source, dtype=dtypes, variant=files)
        except (OSError, ValueError):
            log.exception("could not load %s from %s", self.name, source)
            raise GenerationError(
                f"could not load the {self.display_name} weights {model_label(source)!r} (the reason is in the "
                f"worker's log); set {env_name(self.name, mode)} to a Hub repo id or a local folder in diffusers "
                "layout, and HF_HUB_OFFLINE=1 on a machine without internet"
            ) from None
        if hasattr(pipe.vae, "enable_tiling"):
            pipe.vae.enable_tiling()  # the final decode is where these models run out of memory
        pipe.set_progress_bar_config(disable=True)
        size = sum(_weights_bytes(c) for c in pipe.components.values())
        memory_mode = self._place(pipe, device, size)
        return _Loaded(pipe, size, memory_mode, time.monotonic() - started)

    def _place(self, pipe: Any, device: str, size: int) -> str:
        """Move the pipeline to the GPU whole, or offload it, from DAILIES_MEMORY_MODE and free VRAM."""
        if device == "cpu":
            return "cpu"
        import torch

        mode = os.environ.get("DAILIES_MEMORY_MODE", "auto").strip() or "auto"
        if mode not in MEMORY_MODES:
            raise GenerationError(f"DAILIES_MEMORY_MODE must be one of {', '.join(MEMORY_MODES)}, got {mode!r}")
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

    def _resident(self, variant: Variant, mode: str, device: str) -> tuple[_Loaded, bool]:
        key = (self.name, self.weights(variant, mode), mode, device)
        return RESIDENT.get(key, lambda: self._load(variant, mode, device), device)

    def generate(self, request: JobSpec, progress: Progress, cancelled: CancelCheck) -> Video:
        import torch

        variant = self.variant(request.params.get("model"))
        mode = IMAGE_TO_VIDEO if request.image is not None else TEXT_TO_VIDEO
        image = decode_image(request.image, request.width, request.height) if request.image is not None else None
        device = self.device()
        progress(0.0, f"loading {self.display_name} {variant.name}")
        loaded, fresh = self._resident(variant, mode, device)
        if cancelled():
            raise Cancelled()
        steps = request.params.get("steps") or variant.steps
        guidance = request.params.get("guidance")
        guidance = variant.guidance if guidance is None else guidance
        total = self.total_steps(request, variant, steps)

        def on_step(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
            # Raising here stops at once; pipe._interrupt would still run the (long) VAE decode.
            if cancelled():
                raise Cancelled()
            progress(0.05 + 0.85 * (step + 1) / total, f"step {step + 1}/{total}")
            return tensors

        args: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or None,
            "height": request.height,
            "width": request.width,
            "num_frames": request.num_frames,
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "generator": torch.Generator("cpu").manual_seed(request.seed or 0),
            "output_type": "np",
            "callback_on_step_end": on_step,
            **self.call_args(request, variant),
        }
        if image is not None:
            args["image"] = image
        started = time.monotonic()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        try:
            with torch.inference_mode():
                output = loaded.pipe(**args).frames
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
        frames = to_uint8(np.asarray(output)[0])
        extra = {
            "timings": {"load_s": round(loaded.load_s if fresh else 0.0, 3), "generate_s": round(generate_s, 3)},
            "device": device,
            "memory_mode": loaded.memory_mode,
            "mode": mode,
            "steps": steps,
            "guidance": guidance,
        }
        if device == "cuda":
            extra["peak_vram_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        return Video(
            mp4=encode_mp4(frames, request.fps),
            poster=poster_jpeg(frames[len(frames) // 2]),
            model=model_label(self.weights(variant, mode)),
            width=frames.shape[2],
            height=frames.shape[1],
            num_frames=len(frames),
            fps=request.fps,
            extra=extra,
        )


def _pipeline_class(name: str) -> type:
    """A diffusers pipeline class by name, or any class by dotted path."""
    if "." not in name:
        import diffusers

        return getattr(diffusers, name)
    from importlib import import_module

    module, _, attribute = name.rpartition(".")
    return getattr(import_module(module), attribute)


def model_label(source: str) -> str:
    """A repo id as is; a local folder by its name only (paths of the worker's disk stay private)."""
    return f"local:{Path(source).name}" if Path(source).expanduser().exists() else source


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pipeline frames (T, H, W, 3) floats in [0, 1] to uint8 for the H.264 encoder."""
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def decode_image(data: bytes, width: int, height: int):
    """The start image of an image-to-video job, as RGB at the video's size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise GenerationError("image is not a readable picture (PNG, JPEG or WebP)") from None
