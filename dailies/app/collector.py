"""The one collector in the app: finished results from Redis into the dataset and the index.

Workers push job ids onto `dailies:collect`; the collector moves each onto
`dailies:collecting` while it stores it (BLMOVE, so it wakes the moment a result lands and
nothing is lost if the app stops halfway). On start it finishes whatever was left there.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from dailies.app.dataset import Generation, GenerationRow, LocalDataset, row_seed
from dailies.app.index import Index
from dailies.contract import keys
from dailies.contract.job_record import Field, JobRecord, JobStatus, ResultMeta
from dailies.contract.loop import BackgroundLoop

log = logging.getLogger("dailies.app.collector")
RUN_SECONDS_WEIGHT = 0.3  # how far one run moves its backend's average run time


class Collector:
    def __init__(
        self, redis: Redis, dataset: LocalDataset, index: Index, on_row: Callable[[GenerationRow], None] | None = None
    ) -> None:
        self.redis, self.dataset, self.index = redis, dataset, index
        self.on_row = on_row  # the publisher's hook for new rows
        self._loop = BackgroundLoop("collector", self._step)

    def start(self) -> None:
        for raw in self.redis.lrange(keys.COLLECTING, 0, -1):
            self._store(raw.decode(), recovering=True)
        self._loop.start()

    def health(self) -> dict[str, Any]:
        return self._loop.health()

    def stop(self) -> None:
        self._loop.stop()

    def _step(self) -> float:
        """Store the next result (waiting for one at most 1 s, so a stop is seen)."""
        try:
            raw = self.redis.blmove(keys.COLLECT, keys.COLLECTING, 1, "RIGHT", "LEFT")
        except RedisConnectionError:
            return 0.5
        if raw is not None:
            try:
                self._store(raw.decode())
            except RedisError:
                # Redis went away halfway: the id stays on the collecting list and the next start finishes it.
                log.exception("could not store result %s", raw)
        return 0

    def _store(self, job_id: str, recovering: bool = False) -> None:
        """Collect one result; one that cannot be stored is set aside instead of blocking the
        collector (or the next start): its job fails with the reason and its result is dropped."""
        try:
            self.collect(job_id, recovering)
        except RedisError:
            raise
        except Exception as exc:
            log.exception("result %s cannot be stored; setting it aside", job_id)
            error = f"the result could not be stored ({type(exc).__name__}); please submit it again"
            JobRecord(self.redis, job_id).end(JobStatus.FAILED, error=error)
            self._drop(job_id)

    def _drop(self, job_id: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.lrem(keys.COLLECTING, 1, job_id)
            pipe.delete(keys.result(job_id))
            pipe.execute()

    def collect(self, job_id: str, recovering: bool = False) -> None:
        record = JobRecord(self.redis, job_id)
        job = record.read()
        result = self.redis.hgetall(keys.result(job_id))
        if not job or not result:
            if job:
                record.end(JobStatus.FAILED, error="the result expired before it could be stored")
            self._drop(job_id)
            return
        meta = ResultMeta.from_json(result[b"meta"])
        record.run = meta.run
        if meta.run is not None and job.get(Field.ATTEMPTS) != str(meta.run):
            # A run that was handed on (its worker stalled) and woke up: the job is its successor's.
            log.info("job %s: dropping the result of run %s, which was handed on", job_id, meta.run)
            self._drop(job_id)
            return
        if JobStatus(job[Field.STATUS]).terminal and not (recovering and job[Field.STATUS] == JobStatus.SUCCEEDED):
            # Canceled or failed while its video was on the way: not kept.
            log.info("job %s ended %s before its result was stored; dropping the result", job_id, job[Field.STATUS])
            self._drop(job_id)
            return
        generation = Generation.of(json.loads(job[Field.REQUEST]), float(job[Field.CREATED]), meta, time.time())
        row = self.dataset.write(generation, result[b"video"], result[b"poster"])  # stored once whatever comes twice
        self.index.add([row])
        if self.on_row:
            self.on_row(row)
        # The backend's recent run time, from which queued jobs' waits are estimated (jobs.py).
        before = self.redis.hget(keys.RUN_SECONDS, generation.backend)
        run_s = generation.timings["run_s"]
        typical = run_s if before is None else (1 - RUN_SECONDS_WEIGHT) * float(before) + RUN_SECONDS_WEIGHT * run_s
        self.redis.hset(keys.RUN_SECONDS, generation.backend, round(typical, 3))
        ended = record.end(JobStatus.SUCCEEDED, **{Field.MESSAGE: "", Field.RESULT: json.dumps(result_payload(row))})
        if not ended and not recovering:
            log.warning("job %s ended while its result was being stored; the generation is kept", job_id)
        self._drop(job_id)


def result_payload(row: GenerationRow) -> dict[str, Any]:
    """The `result` of a finished job and the media URLs of a generation."""
    return {
        "generation_id": row["id"],
        "video_url": f"/media/{row['video_path']}",
        "poster_url": f"/media/{row['poster']}",
        "seed": row_seed(row),
        "model": row["model"],
        "width": row["width"],
        "height": row["height"],
        "num_frames": row["num_frames"],
        "fps": row["fps"],
        "duration_s": row["duration_s"],
        "has_audio": row.get("has_audio", False),  # rows stored before sound have none
    }
