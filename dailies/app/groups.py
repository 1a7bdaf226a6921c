"""Comparisons: one prompt and seed sent to several backends at once, one job per backend.

`POST /api/v1/jobs` with `backends: [...]` instead of `backend` makes a group. Each backend
gets the body as it can take it: size and duration snapped to its own rules, fields it does
not declare left out. Every job is checked before any is queued, so a refused group changes
nothing (its record is removed again when a reservation or the queueing fails). The group lives
in Redis as long as its jobs do (`dailies:group:<id>`); each finished generation carries the
group id into the dataset's `group` column, so a comparison can still be opened from the gallery
once Redis has forgotten it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from redis import Redis

import backends
from backends.base import IMAGE_TO_VIDEO, Backend
from dailies.app.errors import ApiError, invalid
from dailies.app.index import Index
from dailies.app.jobs import Jobs
from dailies.app.validation import COMMON_FIELDS, frames_for, integer, seconds, storable
from dailies.app.visitors import Visitor
from dailies.contract import keys
from dailies.contract.job_record import TERMINAL
from dailies.contract.settings import Settings
from dailies.contract.spec import JOB_TTL, new_id, valid_id

GROUP_MAX = 4
# Fields every job of a group shares as given; the others are snapped or left out per backend.
SHARED = ("prompt", "image")


def snapped_body(body: dict[str, Any], backend: Backend) -> dict[str, Any]:
    """The group's body as `backend` takes it: size, fps and duration moved to the nearest value
    the rules of its chosen model allow, and the fields it does not declare (seed, negative
    prompt, another backend's parameters) left out."""
    out: dict[str, Any] = {"backend": backend.name, **{k: body[k] for k in SHARED if k in body}}
    declared = {p.name for p in backend.params}
    out.update({k: v for k, v in body.items() if k in declared})
    if backend.seeded and "seed" in body:
        out["seed"] = body["seed"]
    if backend.negative_prompt and "negative_prompt" in body:
        out["negative_prompt"] = body["negative_prompt"]
    try:
        rules = backend.rules(out.get("model"))
    except ValueError:
        return out  # an unknown model: validation names the field
    for name in ("width", "height"):
        value = body.get(name)
        # Not a whole number: left as is, so validation names the field.
        out[name] = rules.size.nearest(value) if _whole(value) else value
    low, high = rules.fps_bounds
    fps = body.get("fps")
    out["fps"] = min(max(fps, low), high) if _whole(fps) else fps
    duration = body.get("duration_s")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool) and duration > 0:
        out["num_frames"] = rules.frames.nearest(duration * (out["fps"] if _whole(out["fps"]) else rules.fps))
    else:
        out["duration_s"] = duration
    return {k: v for k, v in out.items() if v is not None}


def within_reach(body: dict[str, Any], chosen: list[Backend]) -> None:
    """Refuse, before any snapping, what a single job would refuse on every backend of the group:
    a value that cannot travel (not finite, beyond 2**53), a size or fps that is not a whole
    number, a duration that is not a positive number, and a size, fps or duration outside the
    range all of them together take. Snapping then only moves a value between the backends' rules."""
    storable(body)
    rules = []
    for b in chosen:
        try:
            rules.append(b.rules(body.get("model") if "model" in {p.name for p in b.params} else None))
        except ValueError:
            pass  # an unknown model: validation names the field
    if not rules:
        return
    names = ", ".join(b.name for b in chosen)
    for name in ("width", "height"):
        value = integer(body, name)
        low, high = min(r.size.minimum for r in rules), max(r.size.maximum for r in rules)
        if value is not None and not low <= value <= high:
            raise invalid(name, f"{name} must be between {low} and {high} for {names}")
    fps = integer(body, "fps")
    low, high = min(r.fps_bounds[0] for r in rules), max(r.fps_bounds[1] for r in rules)
    if fps is not None and not low <= fps <= high:
        raise invalid("fps", f"fps must be between {low} and {high} for {names}")
    duration = seconds(body)
    if duration is None:
        return
    # At the fps each backend would run at (the group's, moved into its bounds, or its own).
    rates = [min(max(fps, r.fps_bounds[0]), r.fps_bounds[1]) if fps is not None else r.fps for r in rules]
    if all(frames_for(duration, rate, r.frames) is None for rate, r in zip(rates, rules, strict=True)):
        shortest = min(r.frames.minimum / rate for rate, r in zip(rates, rules, strict=True))
        longest = max(r.frames.maximum / rate for rate, r in zip(rates, rules, strict=True))
        raise invalid("duration_s", f"duration_s must be between {shortest:.2f} and {longest:.2f} seconds for {names}")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class GroupStatus:
    """A comparison as GET /api/v1/groups/{id} answers it (`to_json`)."""

    id: str
    prompt: str
    created: float | None  # None once Redis has forgotten the group (rebuilt from the dataset)
    jobs: list[dict[str, Any]]  # each as GET /api/v1/jobs/{id} answers it, plus its stored `generation`

    @property
    def status(self) -> str:
        """`running` while a job of it has not ended, then `finished`."""
        return "running" if any(j["status"] not in TERMINAL for j in self.jobs) else "finished"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, "created": self.created, "status": self.status, "jobs": self.jobs}


class Groups:
    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        jobs: Jobs,
        index: Index,
        generation: Callable[[str], dict[str, Any] | None],
    ) -> None:
        self.redis, self.settings, self.jobs, self.index = redis, settings, jobs, index
        self.generation = generation  # a stored generation with its media URLs, or None

    def _names(self, body: dict[str, Any]) -> list[str]:
        names = body.get("backends")
        if "backend" in body:
            raise invalid("backend", "give backend (one job) or backends (a comparison), not both")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise invalid("backends", "backends must be a list of backend names")
        if not 2 <= len(names) <= GROUP_MAX or len(set(names)) != len(names):
            raise invalid("backends", f"backends must name 2 to {GROUP_MAX} different backends")
        unknown = [n for n in names if n not in backends.BACKEND_CLASSES]
        if unknown:
            known = ", ".join(backends.BACKEND_CLASSES)
            raise ApiError(422, "unknown_backend", f"{unknown[0]!r} is not a backend; choose from: {known}", "backends")
        return names

    def submit(self, body: dict[str, Any], visitor: Visitor) -> dict[str, Any]:
        names = self._names(body)
        chosen = [backends.get(n, self.settings) for n in names]
        if "num_frames" in body:
            raise invalid("num_frames", "a comparison takes duration_s (frame counts differ between backends)")
        declared = {p.name for b in chosen for p in b.params}
        unknown = sorted(set(body) - COMMON_FIELDS - declared - {"backends"})
        if unknown:
            raise invalid(unknown[0], f"unknown field {unknown[0]!r} for backends {', '.join(names)}")
        for b in chosen:
            if self.jobs.in_request(b):
                # On ZeroGPU an open model runs in its visitor's own request, one at a time, not on the queue.
                raise invalid("backends", f"{b.display_name} cannot be compared here: on ZeroGPU it runs alone")
        if body.get("image") is not None:
            for b in chosen:
                if IMAGE_TO_VIDEO not in b.modes:
                    raise invalid("image", f"{b.display_name} does not do image-to-video; leave it out of this group")
        within_reach(body, chosen)
        group_id = new_id()
        specs = []
        for b in chosen:
            try:
                spec = self.jobs.prepare(snapped_body(body, b), visitor)
            except ApiError as exc:
                raise ApiError(
                    exc.status, exc.code, f"{b.display_name}: {exc.message}", exc.field, exc.retry_after
                ) from None
            specs.append(replace(spec, group=group_id))
        with self.redis.pipeline() as pipe:
            record = {"prompt": specs[0].prompt, "created": time.time(), "jobs": json.dumps([s.id for s in specs])}
            if visitor.owner is not None:
                record["owner"] = visitor.owner  # as each of its jobs: who may cancel or retry them
            pipe.hset(keys.group(group_id), mapping=record)
            pipe.expire(keys.group(group_id), JOB_TTL)
            pipe.execute()
        try:
            accepted = self.jobs.enqueue(specs, visitor)
        except BaseException:
            # Refused or failed: enqueue gave its reservations back; the record would name jobs never queued.
            self.redis.delete(keys.group(group_id))
            raise
        return {"group": group_id, "jobs": [{**a.to_json(), "backend": a.spec.backend} for a in accepted]}

    def status(self, group_id: str) -> GroupStatus:
        """Each job of the group (its status, and its generation once stored), oldest first."""
        raw = keys.decode(self.redis.hgetall(keys.group(group_id))) if valid_id(group_id) else {}
        if raw:
            ids = json.loads(raw["jobs"])
            prompt, created = raw["prompt"], float(raw["created"])
        else:
            rows = self.index.group(group_id) if valid_id(group_id) else []
            if not rows:
                raise ApiError(404, "not_found", f"no comparison {group_id!r}")
            ids, prompt, created = [r["id"] for r in rows], rows[0]["prompt"], None
        return GroupStatus(group_id, prompt, created, [self._job(job_id) for job_id in ids])

    def _job(self, job_id: str) -> dict[str, Any]:
        generation = self.generation(job_id)
        try:
            job = self.jobs.status(job_id).to_json()
        except ApiError:  # gone from Redis: the stored generation is all there is
            if generation is None:
                return {"id": job_id, "status": "failed", "backend": None, "error": "this job has expired"}
            job = {"id": job_id, "status": "succeeded", "backend": generation["backend"], "progress": 1.0}
        return {**job, "generation": generation if job["status"] == "succeeded" else None}
