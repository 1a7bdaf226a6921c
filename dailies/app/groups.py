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
from dataclasses import replace
from typing import Any

from redis import Redis

import backends
from backends.base import IMAGE_TO_VIDEO, Backend
from dailies.app.errors import ApiError, invalid
from dailies.app.index import Index
from dailies.app.jobs import Jobs
from dailies.app.validation import COMMON_FIELDS
from dailies.app.visitors import Visitor
from dailies.contract import keys
from dailies.contract.settings import Settings
from dailies.contract.spec import JOB_TTL, TERMINAL, new_id, valid_id

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


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
        group_id = new_id()
        specs = []
        for b in chosen:
            try:
                spec = self.jobs.prepare(snapped_body(body, b), visitor)
            except ApiError as exc:
                raise ApiError(exc.status, exc.code, f"{b.display_name}: {exc.message}", exc.field) from None
            specs.append(replace(spec, group=group_id))
        with self.redis.pipeline() as pipe:
            pipe.hset(
                keys.group(group_id),
                mapping={
                    "prompt": specs[0].prompt,
                    "created": time.time(),
                    "jobs": json.dumps([s.id for s in specs]),
                },
            )
            pipe.expire(keys.group(group_id), JOB_TTL)
            pipe.execute()
        try:
            answers = self.jobs.enqueue(specs, visitor)
        except BaseException:
            # Refused or failed: enqueue gave its reservations back; the record would name jobs never queued.
            self.redis.delete(keys.group(group_id))
            raise
        return {"group": group_id, "jobs": [{**a, "backend": s.backend} for a, s in zip(answers, specs, strict=True)]}

    def status(self, group_id: str) -> dict[str, Any]:
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
        jobs = [self._job(job_id) for job_id in ids]
        active = any(j["status"] not in TERMINAL for j in jobs)
        return {
            "id": group_id,
            "prompt": prompt,
            "created": created,
            "status": "running" if active else "finished",
            "jobs": jobs,
        }

    def _job(self, job_id: str) -> dict[str, Any]:
        generation = self.generation(job_id)
        try:
            job = self.jobs.status(job_id).to_json()
        except ApiError:  # gone from Redis: the stored generation is all there is
            if generation is None:
                return {"id": job_id, "status": "failed", "backend": None, "error": "this job has expired"}
            job = {"id": job_id, "status": "succeeded", "backend": generation["backend"], "progress": 1.0}
        return {**job, "generation": generation if job["status"] == "succeeded" else None}
