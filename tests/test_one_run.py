"""One run per job: a stalled worker whose job was handed on stores nothing when it wakes, and
the collector and the dataset store one row per job id whatever arrives twice."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker

from dailies.app.collector import Collector
from dailies.app.dataset import Generation, LocalDataset
from dailies.app.index import Index
from dailies.contract import keys
from dailies.contract.job_record import Field, JobRecord, ResultMeta
from dailies.contract.spec import STALE_BEATS, new_id
from tests.conftest import Processes, start_app, wait_for


def generation(job_id: str) -> Generation:
    meta = ResultMeta("preview", 8, 8, 1, 8, False, started=time.time() - 2, finished=time.time() - 1, run=1)
    return Generation.of({"id": job_id, "prompt": "a boat", "backend": "preview", "seed": 1}, time.time() - 3, meta, 0)


def stored_ids(dataset: LocalDataset) -> list[str]:
    return [row["id"] for row in dataset.rows()]


@pytest.mark.unit
def test_the_dataset_writes_one_row_per_job_id(tmp_path: Path) -> None:
    dataset = LocalDataset(tmp_path)
    first = generation(new_id())
    row = dataset.write(first, b"first video", b"first poster")
    again = dataset.write(first, b"another video", b"another poster")
    assert again == row and stored_ids(dataset) == [first.id]
    assert (tmp_path / row["video_path"]).read_bytes() == b"first video"  # the stored files are left as they were
    other = generation(new_id())
    dataset.write(other, b"v", b"p")
    assert stored_ids(dataset) == [first.id, other.id]


def result_of(redis: Redis, job_id: str, run: int) -> None:
    """A run's hand-back as it lands in Redis (written directly: a stale worker's, or one delivered twice)."""
    meta = ResultMeta("preview", 8, 8, 1, 8, False, started=time.time() - 1, finished=time.time(), run=run)
    redis.hset(keys.result(job_id), mapping={"video": f"run {run}", "poster": b"jpg", "meta": meta.to_json()})
    redis.lpush(keys.COLLECT, job_id)


def test_the_collector_stores_one_row_per_job_whatever_arrives_twice(redis: Redis, tmp_path: Path) -> None:
    dataset = LocalDataset(tmp_path / "dataset")
    collector = Collector(redis, dataset, Index(tmp_path / "index.sqlite"))
    record = JobRecord(redis, new_id())
    record.create("preview", {"id": record.id, "prompt": "a boat", "backend": "preview", "seed": 1}, in_request=False)
    assert record.start() == 1 and record.requeue("worker stopped") and record.start() == 2
    # The first run, handed on, delivers late: dropped, though the job is still running.
    result_of(redis, record.id, run=1)
    collector.collect(record.id)
    assert stored_ids(dataset) == [] and record.read()[Field.STATUS] == "running"
    # The second run's result, delivered twice (the second time as a restart finishing its list).
    result_of(redis, record.id, run=2)
    collector.collect(record.id)
    result_of(redis, record.id, run=2)
    collector.collect(record.id, recovering=True)
    assert stored_ids(dataset) == [record.id] and record.read()[Field.STATUS] == "succeeded"
    assert (dataset.root / next(dataset.rows())["video_path"]).read_bytes() == b"run 2"
    assert not redis.exists(keys.result(record.id))


HEARTBEAT_S = 0.3  # the reaper hands a job on after STALE_BEATS silent beats: 1.8 s


@pytest.mark.faults
def test_a_stalled_worker_whose_job_was_handed_on_stores_nothing(
    processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    """SIGSTOP the worker running a job past the heartbeat timeout: the reaper queues it again and
    the other worker runs it. SIGCONT: the first finds its job taken and stops; one row is stored."""
    env = {"DAILIES_HEARTBEAT_S": str(HEARTBEAT_S), "DAILIES_PREVIEW_PACE": "4"}
    workers = [processes.worker(redis_url, **env), processes.worker(redis_url, **env)]
    app = start_app(processes, tmp_path, redis_url, **env)
    redis = Redis.from_url(redis_url)
    job_id = app.submit(prompt="one run only", backend="preview", num_frames=12).json()["id"]
    record = JobRecord(redis, job_id)
    wait_for(lambda: float(record.get(Field.PROGRESS) or 0) > 0.2, 30, what="the job running")
    pid = next(w.pid for w in Worker.all(connection=redis) if w.get_current_job_id() == job_id)
    stalled = next(w for w in workers if w.proc.pid == pid)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: record.get(Field.ATTEMPTS) == "2", 30, what="the job handed to the other worker")
    finally:
        os.kill(pid, signal.SIGCONT)  # while its successor runs: both write to the same job
    done = app.wait_done(job_id, timeout=60)
    assert done["status"] == "succeeded", done
    # The woken worker found its job taken at its next write and stopped.
    woken = next(w for w in Worker.all(connection=redis) if w.pid == pid)
    wait_for(lambda: woken.refresh() or woken.get_current_job_id() is None, 30, what="the woken worker's run to end")
    assert stalled.proc.poll() is None, stalled.output()
    rows = [
        json.loads(line)
        for path in (app.data / "dataset" / "data").glob("*/*/metadata.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert [row["id"] for row in rows] == [job_id]
    # The video is the second run's: it started after the stall, the first within moments of the submit.
    assert json.loads(rows[0]["timings"])["queued_s"] > STALE_BEATS * HEARTBEAT_S, rows[0]
    gallery = app.client.get("/api/v1/generations").json()["items"]
    assert [item["id"] for item in gallery] == [job_id]
    assert len(list((app.data / "dataset" / "data").rglob("*.mp4"))) == 1
