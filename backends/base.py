"""What every backend declares and the call the worker makes.

A backend module is imported by the app for its declaration (to validate requests and draw
the form), so heavy libraries (torch, diffusers) are imported inside `load`/`generate` only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

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

    def describe(self) -> dict:
        return {
            "rule": f"{self.step}k+{self.offset}",
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


class Backend(ABC):
    name: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str] = ""
    family: ClassVar[str]  # "preview", "open" or "hosted"
    modes: ClassVar[frozenset[str]] = frozenset({TEXT_TO_VIDEO})
    params: ClassVar[tuple[Param, ...]] = ()
    frames: ClassVar[FrameRule]
    size: ClassVar[SizeRule]
    fps: ClassVar[int]
    fps_range: ClassVar[tuple[int, int] | None] = None  # None: the native fps only
    seeded: ClassVar[bool] = True
    negative_prompt: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def availability(self) -> Availability:
        """Whether this machine (or key) can run the backend, and if not why."""

    @abstractmethod
    def generate(self, request: JobSpec, progress: Progress, cancelled: CancelCheck) -> Video:
        """Make the video; check `cancelled()` between steps and raise `Cancelled`."""

    def describe(self) -> dict:
        availability = self.availability()
        return {
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "family": self.family,
            "hosted": self.family == "hosted",
            "modes": sorted(self.modes),
            "available": availability.usable,
            "unavailable_reason": availability.reason or None,
            "frames": self.frames.describe(),
            "size": self.size.describe(),
            "fps": self.fps,
            "fps_range": list(self.fps_range) if self.fps_range else None,
            "seed": self.seeded,
            "negative_prompt": self.negative_prompt,
            "params": [p.describe() for p in self.params],
        }
