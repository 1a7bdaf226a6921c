"""The typed job: what the app validated, exactly as the worker receives it, and its lifecycle.

A `JobSpec` is made once, by the app's validation, and travels to the worker unchanged (RQ
pickles it); the worker never rebuilds it from a dict. Its `recipe()` is what users are shown
and what the dataset keeps.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

JOB_TTL = 7 * 86400
STALE_BEATS = 6  # a running job whose worker missed this many heartbeats is reported failed
POLL_LEASE_S = 60  # a claimed poll of a hosted job that has not reported back by then is claimed again
MAX_ATTEMPTS = 2  # a local job whose worker died mid-job runs once more, then fails
RUNNER = "dailies.worker.runner.run"  # what RQ runs for a job (by dotted path: the app never imports it)


def new_id() -> str:
    """24 hex digits that sort by creation time (milliseconds, then randomness)."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


def valid_id(job_id: str) -> bool:
    return len(job_id) == 24 and all(c in "0123456789abcdef" for c in job_id)


def duration_s(num_frames: int, fps: int) -> float:
    """A clip's length as recipes show it."""
    return round(num_frames / fps, 3)


@dataclass(frozen=True)
class JobSpec:
    """A validated job: every field filled in (defaults applied, seed drawn)."""

    id: str
    backend: str
    prompt: str
    negative_prompt: str
    seed: int | None
    width: int
    height: int
    num_frames: int
    fps: int
    params: dict[str, Any] = field(default_factory=dict)
    image: bytes | None = None
    group: str = ""  # the comparison this job is part of (one prompt sent to several backends)

    def recipe(self) -> dict[str, Any]:
        """What the job asked for, as shown to users and kept in the dataset (no image bytes)."""
        recipe = asdict(self)
        del recipe["image"]
        return recipe
