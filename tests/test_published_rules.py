"""Every open checkpoint's declared rules (backends/) against the published values (tests/published_rules.py).

A declaration that drifts from the model's published fps, frame rule, size multiple or defaults
(Mochi at 24 fps instead of its 30) makes videos the model was not made for, or refuses requests
it takes: this fails first, naming the checkpoint and the field.
"""

from __future__ import annotations

import pytest

from backends import BACKEND_CLASSES
from backends.base import IMAGE_TO_VIDEO, Checkpoint
from tests.published_rules import RULES, Published

DECLARED = [(name, cls) for name, cls in BACKEND_CLASSES.items() if cls.kind in ("open", "preview")]
PAIRS = [(name, c) for name, cls in DECLARED for c in cls.checkpoints]


def test_every_open_backend_and_checkpoint_has_a_row() -> None:
    assert sorted(name for name, _ in DECLARED) == sorted(RULES)
    for name, cls in DECLARED:
        assert sorted(c.name for c in cls.checkpoints) == sorted(RULES[name]), name
        # The default model is the first listed, as the README's table says.
        assert cls.checkpoints[0].name == next(iter(RULES[name])), name


def _declared(checkpoint: Checkpoint) -> dict:
    frames, size = checkpoint.frames, checkpoint.size
    return {
        "fps": checkpoint.fps,
        "fps_range": checkpoint.fps_range,
        "valid_frames": [n for n in range(1, 1000) if frames.valid(n)],
        "default_frames": frames.default,
        "size": (size.multiple, size.minimum, size.maximum),
        "default_size": tuple(size.default),
        "steps": checkpoint.steps,
        "guidance": checkpoint.guidance,
        "image_to_video": IMAGE_TO_VIDEO in checkpoint.modes,
    }


def _expected(rules: Published) -> dict:
    return {
        "fps": rules.fps,
        "fps_range": rules.fps_range,
        "valid_frames": rules.valid_frames(),
        "default_frames": rules.default_frames,
        "size": rules.size,
        "default_size": rules.default_size,
        "steps": rules.steps,
        "guidance": rules.guidance,
        "image_to_video": rules.image_to_video,
    }


@pytest.mark.parametrize(("backend", "checkpoint"), PAIRS, ids=[f"{n}-{c.name}" for n, c in PAIRS])
def test_declared_rules_are_the_published_ones(backend: str, checkpoint: Checkpoint) -> None:
    expected = _expected(RULES[backend][checkpoint.name])
    declared = _declared(checkpoint)
    assert {k: v for k, v in declared.items() if v != expected[k]} == {}, f"{backend} {checkpoint.name}"


@pytest.mark.parametrize(("backend", "model"), [(b, m) for b, models in RULES.items() for m in models])
def test_readme_ranges_sit_inside_the_model_rules(backend: str, model: str) -> None:
    """The table's own consistency: what the README lets a request ask for is what the model takes."""
    rules = RULES[backend][model]
    k, offset = rules.frame_rule
    assert rules.valid_frames() and all((n - offset) % k == 0 for n in rules.valid_frames())
    assert rules.default_frames in rules.valid_frames()
    multiple, low, high = rules.size
    if rules.size_multiple is not None:
        assert multiple % rules.size_multiple == 0
    assert all(low <= side <= high and side % multiple == 0 for side in rules.default_size)
    if rules.fps_range is not None:
        assert rules.fps_range[0] <= rules.fps <= rules.fps_range[1]
