"""Everything the API and the UI share in one app process: Redis, jobs, dataset, index, collector."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

import backends
from backends.base import Availability, Backend
from dailies.app import zerogpu
from dailies.app.collector import Collector
from dailies.app.dataset import GenerationRow, LocalDataset, row_seed
from dailies.app.errors import ApiError
from dailies.app.groups import Groups
from dailies.app.index import GalleryQuery, Index
from dailies.app.jobs import Jobs
from dailies.app.limits import Window
from dailies.app.storage import Storage
from dailies.app.supervisor import Reaper, Supervisor
from dailies.app.takedown import Takedown, Tombstones
from dailies.app.updates import Updates
from dailies.contract import keys
from dailies.contract.settings import Settings

WORKERS_FRESH_S = 2.0
WORKERS_RECHECK_S = 0.25


@dataclass
class Service:
    settings: Settings
    redis: Redis
    embedded: bool
    dataset: LocalDataset = field(init=False)
    index: Index = field(init=False)
    jobs: Jobs = field(init=False)
    groups: Groups = field(init=False)
    collector: Collector = field(init=False)
    storage: Storage = field(init=False)
    takedown: Takedown = field(init=False)
    updates: Updates = field(init=False)
    supervisor: Supervisor | None = None  # embedded mode: restarts a dead worker or Redis
    _workers: tuple[float, list[dict]] = (0.0, [])

    def __post_init__(self) -> None:
        self.dataset = LocalDataset(self.settings.dataset_dir)
        tombstones = Tombstones(self.settings.data_dir / "takedown.sqlite")
        self.index = Index(self.settings.index_path, taken_down=tombstones)
        if self.index.count() == 0:
            self.index.add(self.dataset.rows())
        self.jobs = Jobs(self.redis, self.settings, self.availability, zerogpu.runs_in_request)
        self.updates = Updates(self.jobs)
        self.storage = Storage(self.settings, self.dataset, self.index)
        window = Window(self.redis, self.settings.reports_per_hour, 3600)
        self.takedown = Takedown(tombstones, self.index, self.dataset, self.storage.publisher, window, self.settings)
        self.groups = Groups(self.redis, self.settings, self.jobs, self.index, self.stored_generation)
        self.collector = Collector(self.redis, self.dataset, self.index, on_row=self.storage.on_row)
        self.reaper = Reaper(self.redis, list(backends.BACKEND_CLASSES), self.settings.heartbeat_s)

    def start(self) -> None:
        self.takedown.resume()
        self.storage.start()
        self.collector.start()
        self.updates.start()
        self.reaper.start()

    def stop(self) -> None:
        self.reaper.stop()
        self.updates.stop()
        self.collector.stop()
        self.storage.stop()

    def workers(self, max_age: float = WORKERS_FRESH_S) -> list[dict]:
        """Live RQ workers, their state (busy, idle) and the queues they serve, and never the job one
        runs: healthz is public (cached briefly: this is on the submit path)."""
        at, cached = self._workers
        if time.monotonic() - at > max_age:
            cached = [
                {"name": w.name, "state": str(w.get_state()), "queues": w.queue_names()}
                for w in Worker.all(connection=self.redis)
            ]
            self._workers = (time.monotonic(), cached)
        return cached

    def availability(self, backend: Backend) -> Availability:
        """Usable when a worker serves its queue, or (embedded) the worker process is alive (it may
        still be starting) and this machine can run it, or ZeroGPU lends a GPU."""
        refused = self.redis.get(keys.misconfigured(backend.name))
        if refused:
            return Availability(False, f"misconfigured: {refused.decode()}")
        if zerogpu.runs_in_request(backend):
            return zerogpu.availability(backend)
        queue = keys.queue_name(backend.name)
        # Look again (at most a few times a second) before saying no: a worker may just have started.
        served = any(queue in w["queues"] for w in self.workers()) or any(
            queue in w["queues"] for w in self.workers(max_age=WORKERS_RECHECK_S)
        )
        local = backend.availability()
        if served or (self.supervisor and self.supervisor.worker_alive() and local.usable):
            return Availability(True)
        return Availability(False, local.reason or "no worker is serving this backend right now")

    def describe_backends(self) -> list[dict]:
        described = []
        for backend in backends.all_backends(self.settings):
            availability = self.availability(backend)
            described.append(
                {
                    **backend.describe(),
                    "available": availability.usable,
                    "unavailable_reason": availability.reason or None,
                }
            )
        return described

    def generation(self, generation_id: str) -> dict[str, Any]:
        self.takedown.check(generation_id)
        found = self.stored_generation(generation_id)
        if found is None:
            raise ApiError(404, "not_found", f"no generation {generation_id!r}")
        return found

    def stored_generation(self, generation_id: str) -> dict[str, Any] | None:
        row = self.index.get(generation_id)
        return None if row is None else public_generation(row, self.storage.media_urls([row])[row["id"]])

    def generations(self, query: GalleryQuery) -> dict[str, Any]:
        rows, next_cursor = self.index.page(query)
        urls = self.storage.media_urls(rows)
        return {"items": [public_generation(r, urls[r["id"]]) for r in rows], "next_cursor": next_cursor}

    def health(self) -> dict[str, Any]:
        try:
            self.redis.ping()
            redis_ok = True
            workers = self.workers()
        except RedisError:
            redis_ok, workers = False, []
        # Embedded: the registered worker may be a dead one RQ has not forgotten yet; the process is the truth.
        live = self.supervisor.worker_alive() if self.supervisor else bool(workers)
        loops = {
            "collector": self.collector.health(),
            "reaper": self.reaper.loop.health(),
            "updates": self.updates.health(),
        }
        storage = self.storage.health()
        publisher = storage["publisher"]
        loops_ok = all(loop["running"] for loop in loops.values()) and publisher.get("running", True)
        return {
            "ok": redis_ok and live and loops_ok,
            "redis": {"ok": redis_ok, "embedded": self.embedded},
            "workers": workers,
            **({"supervisor": self.supervisor.health()} if self.supervisor else {}),
            **loops,
            **storage,
            "generations": self.index.count(),
        }


def public_generation(row: GenerationRow, urls: dict[str, str]) -> dict[str, Any]:
    """A gallery item: the stored row with its JSON columns opened and its media URLs."""
    return {
        **{k: v for k, v in row.items() if k not in ("params", "timings", "video_path", "file_name")},
        "seed": row_seed(row),
        "group": row.get("group", ""),  # rows from before comparisons have none
        "has_audio": row.get("has_audio", False),  # rows stored before sound have none
        "params": json.loads(row["params"]),
        "timings": json.loads(row["timings"]),
        **urls,
    }
