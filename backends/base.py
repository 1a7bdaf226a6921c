"""What every backend declares and the call the worker makes.

A backend module is imported by the app for its declaration (to validate requests and draw
the form), so heavy libraries (torch, diffusers) are imported inside `load`/`generate` only.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

from dailies.contract.job_record import ResultMeta
from dailies.contract.settings import Settings
from dailies.contract.spec import JobSpec

TEXT_TO_VIDEO = "text-to-video"
IMAGE_TO_VIDEO = "image-to-video"

Progress = Callable[[float, str], None]
"""`progress(fraction, message)`: fraction in [0, 1]."""
CancelCheck = Callable[[], bool]


class Cancelled(Exception):
    """Raised by a backend that saw the cancel flag between steps."""


class GenerationError(Exception):
    """A failure whose message is safe and useful to show to the user."""


@dataclass(frozen=True)
class Param:
    """A backend-specific parameter (steps, guidance, model variant, ...)."""

    name: str
    type: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    label: str = ""
    help: str = ""

    def check(self, value: Any) -> Any:
        """The value in this parameter's type, or ValueError with a message for the user."""
        if self.type is bool:
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if self.type is int:
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            ):
                raise ValueError("must be an integer")
            value = int(value)
        elif self.type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ValueError("must be a number")
            value = float(value)
        elif self.type is str:
            if not isinstance(value, str):
                raise ValueError("must be a string")
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum:g}")
        return value

    def describe(self) -> dict:
        return {
            "name": self.name,
            "type": self.type.__name__,
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices) or None,
            "label": self.label or self.name.replace("_", " "),
            "help": self.help,
        }


@dataclass(frozen=True)
class FrameRule:
    """Valid frame counts are `step * k + offset` within [minimum, maximum]."""

    step: int
    offset: int
    minimum: int
    maximum: int
    default: int

    def valid(self, n: int) -> bool:
        return self.minimum <= n <= self.maximum and (n - self.offset) % self.step == 0

    def nearest(self, n: float) -> int:
        k = round((n - self.offset) / self.step)
        lo = -(-(self.minimum - self.offset) // self.step)
        hi = (self.maximum - self.offset) // self.step
        return min(max(k, lo), hi) * self.step + self.offset

    def few_values(self) -> list[int] | None:
        """Every valid count where there are at most three (a rule like "81 or 161"), else None."""
        first = self.nearest(self.minimum)
        if (self.maximum - first) // self.step >= 3:
            return None
        return list(range(first, self.maximum + 1, self.step))

    def requirement(self) -> str:
        """The rule in words, naming the values where there are only a few."""
        values = self.few_values()
        if values is None:
            return f"{self.step}k+{self.offset} between {self.minimum} and {self.maximum}"
        return " or ".join(filter(None, (", ".join(map(str, values[:-1])), str(values[-1]))))

    def describe(self) -> dict:
        return {
            "rule": f"{self.step}k+{self.offset}",
            "values": self.few_values(),
            "minimum": self.minimum,
            "maximum": self.maximum,
            "default": self.default,
        }


@dataclass(frozen=True)
class SizeRule:
    """Width and height: multiples of `multiple` within [minimum, maximum]."""

    multiple: int
    minimum: int
    maximum: int
    default: tuple[int, int]
    recommended_min: int = 0

    def nearest(self, n: int) -> int:
        n = round(n / self.multiple) * self.multiple
        lo = -(-self.minimum // self.multiple) * self.multiple
        return min(max(n, lo), self.maximum // self.multiple * self.multiple)

    def describe(self) -> dict:
        return {
            "multiple": self.multiple,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "default": list(self.default),
            "recommended_min": self.recommended_min,
        }


SAME_WEIGHTS = "same"  # Checkpoint.i2v: the text-to-video model also takes a start image


@dataclass(frozen=True)
class GpuCost:
    """What one run of a checkpoint costs on a ZeroGPU card, so a job asks for enough GPU time
    (too little gets the task aborted; too much spends the visitor's daily quota on nothing).

    Estimates from the published timings (REFERENCE.md, on H100) scaled to the ZeroGPU card;
    where none are published, sized from the parameter count until measured."""

    step_s: float  # one denoising step at the reference size and frames
    pixels: int  # width * height * frames of the reference
    fixed_s: float  # loading the weights onto the lent GPU, the text encoder and the VAE decode
    size: Literal["large", "xlarge"] = "large"  # "xlarge" (96 GB, twice the quota) where 48 GB is not enough

    def seconds(self, pixels: int, steps: int) -> int:
        """The GPU duration to ask for `steps` at `pixels` (width * height * frames), with a margin:
        past the duration asked for, the platform may abort the task."""
        seconds = self.fixed_s + steps * self.step_s * pixels / self.pixels
        # Longer than the platform allows is refused up front, with its reason shown: no cap here.
        return max(20, math.ceil(seconds * 1.2))


# A checkpoint that declares no cost (a test checks there is none) asks generously rather than being aborted.
UNLISTED_GPU = GpuCost(10.0, 1280 * 720 * 121, 60)


@dataclass(frozen=True)
class Checkpoint:
    """One model a backend runs (the `model` parameter picks it) and the rules a request must meet.

    A family declares its defaults once as a Checkpoint and each published checkpoint is
    `defaults.but(name, ...)` with only what differs, so the rules sit next to the weights.
    """

    name: str
    frames: FrameRule
    size: SizeRule
    fps: int
    fps_range: tuple[int, int] | None = None  # None: the native fps only
    i2v: str | None = None  # image-to-video: weights (a repo id), SAME_WEIGHTS, or None (text only)
    steps: int | None = None  # default denoising steps (None: the backend takes no steps)
    guidance: float | None = None  # default classifier-free guidance
    repo: str = ""  # published weights (local models only)
    dtype: str = "bfloat16"  # on CUDA; the CPU runs float32
    weights_variant: str | None = None  # e.g. "bf16" files next to the fp32 ones in the repo
    label: str = ""  # how messages name it, e.g. "CogVideoX 1.5 5B"
    gpu: GpuCost | None = None  # open models: what a run costs on ZeroGPU

    def but(self, name: str, **changes: Any) -> Checkpoint:
        """This checkpoint renamed, with `changes` (a published checkpoint from its family's defaults)."""
        return replace(self, name=name, **changes)

    @property
    def modes(self) -> frozenset[str]:
        return frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO}) if self.i2v is not None else frozenset({TEXT_TO_VIDEO})

    @property
    def fps_bounds(self) -> tuple[int, int]:
        return self.fps_range or (self.fps, self.fps)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "label": self.label or self.name,
            "modes": sorted(self.modes),
            "frames": self.frames.describe(),
            "size": self.size.describe(),
            "fps": self.fps,
            "fps_range": list(self.fps_range) if self.fps_range else None,
            "steps": self.steps,
            "guidance": self.guidance,
            "repo": self.repo or None,
        }


@dataclass(frozen=True)
class Availability:
    usable: bool
    reason: str = ""


@dataclass
class Video:
    """What a backend hands back: an H.264 MP4 (with an AAC track when `has_audio`) and a JPEG poster."""

    mp4: bytes
    poster: bytes
    model: str
    width: int
    height: int
    num_frames: int
    fps: int
    extra: dict[str, Any] = field(default_factory=dict)
    has_audio: bool = False

    def meta(self, started: float, run: int | None) -> ResultMeta:
        """What the collector gets beside the files, for a run that started at `started` and ends now."""
        return ResultMeta(
            model=self.model,
            width=self.width,
            height=self.height,
            num_frames=self.num_frames,
            fps=self.fps,
            has_audio=self.has_audio,
            started=started,
            finished=time.time(),
            run=run,
            extra=self.extra,
        )


class Backend(ABC):
    name: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str] = ""
    kind: ClassVar[str]  # "preview", "open" (open weights run by our workers) or "hosted" (a provider's API)
    params: ClassVar[tuple[Param, ...]] = ()
    checkpoints: ClassVar[tuple[Checkpoint, ...]]  # the first is the default
    seeded: ClassVar[bool] = True
    negative_prompt: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def rules(cls, model: str | None) -> Checkpoint:
        """The rules for a request's `model` (None: the default). One set for every model here;
        a backend whose checkpoints differ looks the name up (ValueError naming the choices)."""
        return cls.checkpoints[0]

    def gpu_cost(self, spec: JobSpec) -> GpuCost:
        """What `spec` costs on ZeroGPU (its checkpoint's declared cost)."""
        return self.rules(spec.params.get("model")).gpu or UNLISTED_GPU

    def gpu_seconds(self, spec: JobSpec) -> int:
        """The ZeroGPU duration `spec` asks for: its steps at its size and frames."""
        steps = spec.params.get("steps") or self.rules(spec.params.get("model")).steps or 1
        return self.gpu_cost(spec).seconds(spec.width * spec.height * spec.num_frames, steps)

    # The default checkpoint's rules, for the page's first form.
    @property
    def default(self) -> Checkpoint:
        return self.checkpoints[0]

    @property
    def frames(self) -> FrameRule:
        return self.default.frames

    @property
    def size(self) -> SizeRule:
        return self.default.size

    @property
    def fps(self) -> int:
        return self.default.fps

    @property
    def modes(self) -> frozenset[str]:
        return frozenset().union(*(c.modes for c in self.checkpoints))

    @abstractmethod
    def availability(self) -> Availability:
        """Whether this machine (or key) can run the backend, and if not why."""

    @abstractmethod
    def generate(self, request: JobSpec, progress: Progress, cancelled: CancelCheck) -> Video:
        """Make the video; check `cancelled()` between steps and raise `Cancelled`."""

    def describe(self) -> dict:
        """The declaration for `GET /api/v1/backends`; the top-level rules are the default model's."""
        availability = self.availability()
        default = self.default.describe()
        return {
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "kind": self.kind,
            "hosted": self.kind == "hosted",
            "available": availability.usable,
            "unavailable_reason": availability.reason or None,
            **{key: default[key] for key in ("frames", "size", "fps", "fps_range")},
            "modes": sorted(self.modes),
            "seed": self.seeded,
            "negative_prompt": self.negative_prompt,
            "params": [p.describe() for p in self.params],
            "models": [c.describe() for c in self.checkpoints],
        }
