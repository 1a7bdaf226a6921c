"""The declaration side of every model that runs on this machine: checkpoints, hooks, parameters.

A family module (cogvideox.py, ltx_video.py, mochi.py, wan.py, ltx2.py, hunyuanvideo.py,
pyramid_flow/) declares its checkpoints, which pipeline class runs each, and the hooks where its
pipeline differs. The runtime that loads and runs them (weights, memory, progress, cancel,
seeding, export) is `dailies.worker.models`: it imports these declarations, and they name it
only in RUNTIME, looked up when a model generates, so imports run one way. Importing this
module never imports torch: the app imports backends for their declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

from backends.base import (
    IMAGE_TO_VIDEO,
    SAME_WEIGHTS,
    Availability,
    Backend,
    CancelCheck,
    Checkpoint,
    Param,
    Progress,
    Video,
)
from dailies.contract.media import Audio
from dailies.contract.settings import model_env_name
from dailies.contract.spec import JobSpec

RUNTIME = "dailies.worker.models.generate"  # (backend, request, progress, cancelled) -> Video, on the worker
NO_GPU = "no CUDA GPU on this machine; set DAILIES_DEVICE=cpu to run on the CPU (slow)"

PipelineClass = type | str
"""A pipeline class, a diffusers class name ("WanPipeline") or a dotted path ("backends.pyramid.Pipeline")."""


def gpu_visible() -> bool:
    """An NVIDIA GPU is visible to this machine (decided without importing torch)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return Path("/dev/nvidia0").exists() or (gpus.is_dir() and any(gpus.iterdir()))


def model_label(source: str) -> str:
    """A repo id as is; a local folder by its name only (paths of the worker's disk stay private)."""
    return f"local:{Path(source).name}" if Path(source).expanduser().exists() else source


@cache
def runtime() -> Callable[..., Video]:
    """The worker's `generate`, imported on first use: the app, which only declares, never loads it."""
    module, _, name = RUNTIME.rpartition(".")
    return getattr(import_module(module), name)


def model_params(checkpoints: tuple[Checkpoint, ...]) -> tuple[Param, ...]:
    """The `model`, `steps` and `guidance` parameters every family takes (empty: the checkpoint's default)."""
    steps = ", ".join(f"{c.name}: {c.steps}" for c in checkpoints)
    guidance = ", ".join(f"{c.name}: {c.guidance:g}" for c in checkpoints)
    return (
        Param(
            "model",
            str,
            checkpoints[0].name,
            choices=tuple(c.name for c in checkpoints),
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


class LocalModelBackend(Backend):
    """A model family run by this worker; subclasses declare checkpoints and pipeline classes.

    The pipeline contract is the diffusers pipeline surface (`from_pretrained`, `.components`,
    `.to`, the offload methods, `set_progress_bar_config`, `__call__(...) -> .frames`), so a
    class of our own that offers it runs through the same runtime as a diffusers class.
    """

    kind = "open"
    negative_prompt = True
    pipeline: ClassVar[PipelineClass]  # text-to-video
    i2v_pipeline: ClassVar[PipelineClass | None] = None  # image-to-video
    vae_fp32: ClassVar[bool] = False  # keep the VAE in float32 (Wan's model card asks for it)
    requires: ClassVar[tuple[str, ...]] = ("torch", "diffusers", "transformers")

    def availability(self) -> Availability:
        for package in self.requires:
            if find_spec(package) is None:
                return Availability(False, f"{package} is not installed: pip install -r requirements-models.txt")
        if self.settings.device != "cpu" and not gpu_visible():
            return Availability(False, NO_GPU)
        return Availability(True)

    @classmethod
    def rules(cls, model: str | None) -> Checkpoint:
        for checkpoint in cls.checkpoints:
            if checkpoint.name == (model or cls.checkpoints[0].name):
                return checkpoint
        raise ValueError(f"must be one of {', '.join(c.name for c in cls.checkpoints)}")

    # -- hooks a family may override -------------------------------------------------------

    def pipeline_class(self, checkpoint: Checkpoint, mode: str) -> PipelineClass:
        """Which class loads this checkpoint for `mode`."""
        return self.i2v_pipeline if mode == IMAGE_TO_VIDEO else self.pipeline

    def call_args(self, request: JobSpec, checkpoint: Checkpoint) -> dict[str, Any]:
        """Extra keyword arguments for this family's pipeline call."""
        return {}

    def total_steps(self, request: JobSpec, checkpoint: Checkpoint, steps: int) -> int:
        """How many step callbacks one video makes (a staged pipeline makes more than `steps`)."""
        return steps

    def run(self, pipe: Any, args: dict[str, Any], request: JobSpec, checkpoint: Checkpoint) -> Any:
        """Call the pipeline (a family whose call differs, in stages or arguments, overrides this)."""
        return pipe(**args)

    def sound(self, pipe: Any, output: Any, request: JobSpec) -> Audio | None:
        """The sound track of the pipeline's output, muxed into the MP4 (None: a silent video)."""
        return None

    # -- what the worker calls -------------------------------------------------------------

    def weights(self, checkpoint: Checkpoint, mode: str) -> str:
        """Where the weights come from: the DAILIES_MODEL_* setting, else the published repo."""
        overrides = dict(self.settings.model_overrides)
        if mode == IMAGE_TO_VIDEO:
            override = overrides.get(model_env_name(self.name, IMAGE_TO_VIDEO))
            if override:
                return override
            if checkpoint.i2v not in (None, SAME_WEIGHTS):
                return checkpoint.i2v
        return overrides.get(model_env_name(self.name)) or checkpoint.repo

    def generate(self, request: JobSpec, progress: Progress, cancelled: CancelCheck) -> Video:
        return runtime()(self, request, progress, cancelled)
