"""Nothing is lost when the app or a worker stops at a bad moment."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from redis import Redis

from dailies.app.jobs import Jobs
from dailies.app.visitors import Visitor
from dailies.contract import keys
from dailies.contract.settings import Settings
from tests.conftest import Processes, start_app, wait_for


def metadata_rows(data: Path) -> list[dict]:
    files = data.glob("dataset/data/*/*/metadata.jsonl")
    return [json.loads(line) for path in files for line in path.read_text().splitlines()]


def test_results_finished_while_the_app_was_down_are_collected_once(
    processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    redis = Redis.from_url(redis_url)
    processes.worker(redis_url)
    # Submit without any app running (as a second app replica would): the results wait in Redis.
    jobs = Jobs(redis, Settings.from_env({}), availability=lambda b: b.availability())
    ids = [
        jobs.submit({"prompt": f"while away {i}", "backend": "preview", "num_frames": 2}, Visitor("tester")).spec.id
        for i in range(3)
    ]
    wait_for(lambda: redis.llen("dailies:collect") == 3, what="results waiting in Redis")
    # One result was half-way through collection when a previous app died.
    redis.lmove("dailies:collect", keys.COLLECTING, "RIGHT", "LEFT")

    app = start_app(processes, tmp_path, redis_url)
    for job_id in ids:
        assert app.wait_done(job_id)["status"] == "succeeded"
    assert sorted(r["id"] for r in metadata_rows(app.data)) == sorted(ids)
    assert redis.llen(keys.COLLECTING) == 0 and not redis.keys("dailies:result:*")


def test_crash_after_the_row_was_written_does_not_duplicate_it(
    processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    redis = Redis.from_url(redis_url)
    processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url)
    job_id = app.submit(prompt="written once", backend="preview", num_frames=2).json()["id"]
    result = app.wait_done(job_id)["result"]
    app.proc.stop()
    # Put the job back as if the app had died after writing the row but before finishing.
    video = (app.data / "dataset" / result["video_url"].removeprefix("/media/")).read_bytes()
    poster = (app.data / "dataset" / result["poster_url"].removeprefix("/media/")).read_bytes()
    meta = {
        "model": "preview-renderer-v1",
        "width": 256,
        "height": 256,
        "num_frames": 2,
        "fps": 12,
        "extra": {},
        "started": 0.0,
        "finished": 0.0,
    }
    redis.hset(keys.result(job_id), mapping={"video": video, "poster": poster, "meta": json.dumps(meta)})
    redis.hset(keys.job(job_id), "status", "running")
    redis.lpush(keys.COLLECTING, job_id)

    again = start_app(processes, tmp_path, redis_url)
    assert again.wait_done(job_id)["status"] == "succeeded"
    assert [r["id"] for r in metadata_rows(again.data)] == [job_id]


def test_a_killed_worker_s_job_runs_again_on_the_next_worker_once(
    processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    """Workers on other machines: the app notices the silence, queues the job again, and fails it
    with a clear message if its second worker dies too."""
    beat = {"DAILIES_HEARTBEAT_S": "0.2"}
    slow = {"DAILIES_PREVIEW_PACE": "30", **beat}
    worker = processes.worker(redis_url, **slow)
    app = start_app(processes, tmp_path, redis_url, **beat)
    job_id = app.submit(prompt="doomed", backend="preview").json()["id"]
    status = lambda: app.client.get(f"/api/v1/jobs/{job_id}").json()["status"]  # noqa: E731
    wait_for(lambda: status() == "running", what="running")
    worker.stop(signal.SIGKILL)
    wait_for(lambda: status() == "queued", what="queued again")

    worker = processes.worker(redis_url, **slow)
    wait_for(lambda: status() == "running", what="running again")
    worker.stop(signal.SIGKILL)
    failed = app.wait_done(job_id)
    assert failed["status"] == "failed" and "worker stopped 2 times" in failed["error"], failed

    processes.worker(redis_url, **beat)
    later = app.submit(prompt="after the crash", backend="preview", num_frames=2).json()["id"]
    assert app.wait_done(later)["status"] == "succeeded"
