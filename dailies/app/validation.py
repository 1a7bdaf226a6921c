"""Checks a job body against the chosen backend's declaration, before anything is queued."""

from __future__ import annotations

import base64
import binascii
import math
import secrets
from typing import Any

from backends.base import IMAGE_TO_VIDEO, Backend, Checkpoint, FrameRule
from dailies.app.errors import ApiError, invalid
from dailies.contract.images import ImageRefused, decoded
from dailies.contract.spec import JobSpec, new_id

PROMPT_MAX = 2000
IMAGE_MAX_BYTES = 10 * 1024 * 1024
SEED_MAX = 2**32 - 1
# Numbers beyond 2**53 lose precision in JavaScript clients and overflow float arithmetic here.
NUMBER_MAX = 2**53
NESTING_MAX = 4
COMMON_FIELDS = {
    "prompt",
    "backend",
    "negative_prompt",
    "seed",
    "width",
    "height",
    "num_frames",
    "duration_s",
    "fps",
    "image",
}


def _text(body: dict, name: str, required: bool) -> str:
    value = body.get(name)
    if value is None or (value == "" and not required):
        if required:
            raise invalid(name, f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise invalid(name, f"{name} must be text")
    if "\x00" in value:
        raise invalid(name, f"{name} must not contain NUL characters")
    value = value.strip()
    if required and not value:
        raise invalid(name, f"{name} must not be empty")
    if len(value) > PROMPT_MAX:
        raise invalid(name, f"{name} is {len(value)} characters; the limit is {PROMPT_MAX}")
    return value


def integer(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise invalid(name, f"{name} must be an integer")
    return int(value)


def _image(body: dict) -> bytes:
    """An image as base64 or a data: URL, refused here unless the worker can decode it (see
    dailies.contract.images: the same checks run there)."""
    value = body["image"]
    if not isinstance(value, str):
        raise invalid("image", "image must be a base64 string or a data: URL")
    if value.startswith("data:"):
        _, comma, value = value.partition(",")
        if not comma:
            raise invalid("image", "image is a data: URL without a comma before its data")
    if len(value) > IMAGE_MAX_BYTES * 4 // 3 + 4:
        raise ApiError(413, "too_large", f"image is larger than {IMAGE_MAX_BYTES // 2**20} MB", "image")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("image", "image is not valid base64") from None
    try:
        decoded(data).close()  # decoded once, within the pixel cap, so a damaged one is refused now
    except ImageRefused as exc:
        raise invalid("image", str(exc)) from None
    return data


def _storable(value: Any, depth: int = 0) -> str | None:
    """Why a JSON value could not travel to the worker, the dataset and back to a client, if it can't."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (it has a lone surrogate)"
    elif isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > NUMBER_MAX:
        return f"is out of range (at most {NUMBER_MAX} either side of 0)"
    elif isinstance(value, (list, dict)):
        if depth >= NESTING_MAX:
            return "is nested too deeply"
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        return next(filter(None, (_storable(item, depth + 1) for item in items)), None)
    return None


def storable(body: dict) -> None:
    """ApiError naming the first field whose name or value could not travel to the worker, the
    dataset and back to a client (not finite, beyond 2**53, a lone surrogate, nested too deeply)."""
    for name, value in body.items():
        problem = _storable(name) or _storable(value)
        if problem:
            raise invalid(name, f"{name} {problem}")


def seconds(body: dict) -> float | None:
    """duration_s as a positive number of seconds (None when absent), or ApiError."""
    duration = body.get("duration_s")
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
        or duration <= 0
    ):
        raise invalid("duration_s", "duration_s must be a positive number of seconds")
    return duration


def frames_for(duration: float, fps: int, frames: FrameRule) -> int | None:
    """The frame count nearest `duration` at `fps`, or None where the rule cannot come close."""
    num_frames = frames.nearest(duration * fps)
    return None if abs(num_frames / fps - duration) > max(0.5, 0.1 * duration) else num_frames


def _params(body: dict, backend: Backend) -> dict[str, Any]:
    params = {}
    for param in backend.params:
        try:
            params[param.name] = param.check(body[param.name]) if body.get(param.name) is not None else param.default
        except ValueError as exc:
            raise invalid(param.name, f"{param.name} {exc}") from None
    return params


def _rules(backend: Backend, params: dict[str, Any]) -> Checkpoint:
    try:
        return backend.rules(params.get("model"))
    except ValueError as exc:
        raise invalid("model", f"model {exc}") from None


def validate(body: Any, backend: Backend) -> JobSpec:
    """The job with every field filled in and a new id, or ApiError naming the field.

    The request's `model` (its default when absent) picks the rules the other fields must meet."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    storable(body)
    unknown = sorted(set(body) - COMMON_FIELDS - {p.name for p in backend.params})
    if unknown:
        raise invalid(unknown[0], f"unknown field {unknown[0]!r} for backend {backend.name}")

    job: dict[str, Any] = {"backend": backend.name, "prompt": _text(body, "prompt", True)}
    params = _params(body, backend)
    rules = _rules(backend, params)
    # Where a backend's models differ, messages say whose rule it is.
    several = len(backend.checkpoints) > 1
    for_model = f" for {rules.label}" if several else ""
    negative = _text(body, "negative_prompt", False)
    if negative and not backend.negative_prompt:
        raise invalid("negative_prompt", f"{backend.display_name} does not take a negative prompt")
    job["negative_prompt"] = negative

    seed = integer(body, "seed")
    if seed is not None and not backend.seeded:
        raise invalid("seed", f"{backend.display_name} does not honour a seed")
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise invalid("seed", f"seed must be between 0 and {SEED_MAX}")
    job["seed"] = (secrets.randbelow(SEED_MAX + 1) if seed is None else seed) if backend.seeded else None

    size = rules.size
    for name, default in zip(("width", "height"), size.default, strict=True):
        value = integer(body, name)
        value = default if value is None else value
        if value % size.multiple or not size.minimum <= value <= size.maximum:
            raise invalid(
                name,
                f"{name} must be a multiple of {size.multiple} between {size.minimum} "
                f"and {size.maximum}{for_model}; nearest valid value: {size.nearest(value)}",
            )
        job[name] = value

    fps = integer(body, "fps")
    fps = rules.fps if fps is None else fps
    low, high = rules.fps_bounds
    if not low <= fps <= high:
        allowed = f"between {low} and {high}" if low != high else f"{low}"
        raise invalid("fps", f"fps must be {allowed}{for_model}")
    job["fps"] = fps

    frames = rules.frames
    num_frames = integer(body, "num_frames")
    duration = body.get("duration_s")
    if num_frames is not None and duration is not None:
        raise invalid("duration_s", "give num_frames or duration_s, not both")
    if seconds(body) is not None:
        num_frames = frames_for(duration, fps, frames)
        if num_frames is None:
            raise invalid(
                "duration_s",
                f"duration_s must be between {frames.minimum / fps:.2f} and {frames.maximum / fps:.2f} "
                f"seconds{for_model}",
            )
    elif num_frames is None:
        num_frames = frames.default
    if not frames.valid(num_frames):
        raise invalid(
            "num_frames",
            f"num_frames must be {frames.requirement()}{for_model}; nearest valid value: {frames.nearest(num_frames)}",
        )
    job["num_frames"] = num_frames
    job["params"] = params

    if body.get("image") is not None:
        if IMAGE_TO_VIDEO not in rules.modes:
            raise invalid("image", f"{rules.label if several else backend.display_name} does not do image-to-video")
        job["image"] = _image(body)
    return JobSpec(id=new_id(), **job)
