"""The form's size and length choices for one model: aspect-ratio presets snapped to its size
rule, and the duration range its frame rule allows at its fps."""

from __future__ import annotations

import math

from backends.base import Checkpoint

ASPECTS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}


def preset(rules: Checkpoint, aspect: str) -> tuple[int, int]:
    """Width and height for an aspect ratio, about the area of the model's default size,
    each side snapped to its rule."""
    rule = rules.size
    area = rule.default[0] * rule.default[1]
    ratio = ASPECTS[aspect]
    return rule.nearest(round(math.sqrt(area * ratio))), rule.nearest(round(math.sqrt(area / ratio)))


def duration_range(rules: Checkpoint, fps: int | None = None) -> tuple[float, float, float]:
    """Shortest, longest and default length in seconds at `fps` (the model's own when None),
    rounded down to 1/100 s, so the shortest clip is still inside the range."""
    rate = fps or rules.fps
    frames = rules.frames
    return (
        math.floor(frames.minimum / rate * 100) / 100,
        math.floor(frames.maximum / rate * 100) / 100,
        round(frames.default / rate, 2),
    )
