"""Faults in embedded mode: SIGKILL of the worker or of Redis while jobs run and wait, and a
result that cannot be stored. The app supervises its children and reconnects by itself.

Timings (kill -> worker back, kill -> Redis back, kill -> job done) are printed; run with `-s`
to see them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from redis import Redis

from dailies.contract import keys
from tests.conftest import App, Processes, start_app, wait_for
from tests.test_embedded import children_of

pytestmark = pytest.mark.faults


def child(app: App, name: str) -> int:
    """The pid of the app's child whose command line has `name` (waits for it to be there)."""

    def find() -> int | None:
        return next((pid for pid, cmd in children_of(app.proc.proc.pid).items() if name in cmd), None)

    return wait_for(find, 60, what=name)


def status(app: App, job_id: str) -> dict:
    return app.client.get(f"/api/v1/jobs/{job_id}").json()


def running(app: App, job_id: str, after: float = 0.0) -> dict:
    return wait_for(
        lambda: (s := status(app, job_id))["status"] == "running" and s["progress"] > after and s,
        120,
        what=f"job {job_id} running",
    )


def worker_names(app: App) -> set[str]:
    return {w["name"] for w in app.client.get("/api/v1/healthz").json()["workers"]}


def preview_available(app: App) -> bool:
    listed = app.client.get("/api/v1/backends").json()["backends"]
    return next(b for b in listed if b["name"] == "preview")["available"]


def test_killed_worker_is_restarted_and_its_job_retried_once(processes: Processes, tmp_path: Path) -> None:
    app = start_app(processes, tmp_path, None, DAILIES_PREVIEW_PACE="6", DAILIES_USER_MAX_ACTIVE="10")
    job = app.submit(prompt="survives one crash", backend="preview", num_frames=12).json()["id"]
    running(app, job, after=0.1)

    killed = time.monotonic()
    os.kill(child(app, "worker.py"), signal.SIGKILL)
    # The restarted worker has a name of its own (healthz lists workers as of up to 2 s ago).
    restarted = f"embedded-{app.proc.proc.pid}-1"
    wait_for(lambda: worker_names(app) == {restarted}, 120, what="the new worker")
    back = time.monotonic() - killed
    done = app.wait_done(job, timeout=180)
    finished = time.monotonic() - killed
    assert done["status"] == "succeeded", done
    print(f"\nworker SIGKILL -> new worker registered {back:.1f} s; -> job succeeded {finished:.1f} s")
    assert (app.data / "dataset" / done["result"]["video_url"].removeprefix("/media/")).is_file()

    # Killed twice while running the same job: failed with a clear message, never left running.
    second = app.submit(prompt="dies twice", backend="preview", num_frames=12).json()["id"]
    running(app, second, after=0.1)
    os.kill(child(app, "worker.py"), signal.SIGKILL)
    wait_for(lambda: status(app, second)["status"] == "queued", 30, what="the job queued again")
    running(app, second, after=0.1)
    os.kill(child(app, "worker.py"), signal.SIGKILL)
    failed = app.wait_done(second, timeout=60)
    assert failed["status"] == "failed" and "worker stopped 2 times" in failed["error"], failed

    # A worker that dies right after its start is restarted after a pause: meanwhile healthz says
    # so and the backend is unavailable; then all is well again.
    os.kill(child(app, "worker.py"), signal.SIGKILL)
    wait_for(lambda: not app.client.get("/api/v1/healthz").json()["ok"], 30, interval=0.02, what="ok: false")
    assert not preview_available(app)
    refused = app.submit(prompt="while no worker", backend="preview")
    assert refused.status_code == 503 and refused.headers["retry-after"]
    wait_for(lambda: app.client.get("/api/v1/healthz").json()["ok"], 60, what="ok again")
    assert preview_available(app)
    after = app.submit(prompt="after the crashes", backend="preview", num_frames=1).json()["id"]
    assert app.wait_done(after, timeout=120)["status"] == "succeeded"
    health = app.client.get("/api/v1/healthz").json()
    assert health["supervisor"]["worker"]["restarts"] >= 4 and len(health["workers"]) == 1


def test_killed_redis_comes_back_on_its_append_only_file(processes: Processes, tmp_path: Path) -> None:
    app = start_app(processes, tmp_path, None, DAILIES_PREVIEW_PACE="3", DAILIES_USER_MAX_ACTIVE="10")
    ids = [app.submit(prompt=f"queued through an outage {i}", backend="preview").json()["id"] for i in range(4)]
    running(app, ids[0])
    assert [status(app, i)["status"] for i in ids[1:]] == ["queued"] * 3
    app_pid = app.proc.proc.pid

    killed = time.monotonic()
    os.kill(child(app, "redis-server"), signal.SIGKILL)
    wait_for(lambda: app.client.get("/api/v1/healthz").status_code == 200, 60, what="Redis back")
    back = time.monotonic() - killed
    done = [app.wait_done(i, timeout=180) for i in ids]
    finished = time.monotonic() - killed
    print(f"\nredis SIGKILL -> healthz answers with Redis {back:.1f} s; -> 4 jobs done {finished:.1f} s")
    assert [d["status"] for d in done] == ["succeeded"] * 4, done
    assert app.proc.proc.pid == app_pid and app.proc.proc.poll() is None
    health = app.client.get("/api/v1/healthz").json()
    assert health["ok"] and health["supervisor"]["redis_server"]["restarts"] == 1


def test_a_result_that_cannot_be_stored_is_set_aside(processes: Processes, tmp_path: Path, redis_url: str) -> None:
    """Left half-collected by a previous app: the next start fails that job, leaves no files, and runs."""
    redis = Redis.from_url(redis_url)
    processes.worker(redis_url)
    job_id = "0" * 12 + "a" * 12
    redis.hset(keys.job(job_id), mapping={"status": "running", "backend": "preview", "created": time.time()})
    # Text the dataset cannot store (a lone surrogate), as an older app let through.
    request = {"id": job_id, "prompt": "broken \ud800", "backend": "preview", "seed": 1}
    redis.hset(keys.job(job_id), "request", json.dumps(request))
    meta = {"model": "x", "width": 64, "height": 64, "num_frames": 1, "fps": 8, "started": 0.0, "finished": 1.0}
    redis.hset(keys.result(job_id), mapping={"video": b"mp4", "poster": b"jpg", "meta": json.dumps(meta)})
    redis.lpush(keys.COLLECTING, job_id)

    app = start_app(processes, tmp_path, redis_url)
    failed = status(app, job_id)
    assert failed["status"] == "failed" and "could not be stored" in failed["error"]
    assert redis.llen(keys.COLLECTING) == 0 and not redis.exists(keys.result(job_id))
    assert not [p for p in (app.data / "dataset").rglob("*") if p.is_file() and p.name != "README.md"]
    ok = app.submit(prompt="still working", backend="preview", num_frames=1).json()["id"]
    assert app.wait_done(ok)["status"] == "succeeded"


def test_the_collector_outlives_redis_refusing_writes(app: App, redis: Redis) -> None:
    """As when the data disk fills (MISCONF): Redis refuses every write for a while. The collector
    keeps running and says why in healthz; once writes are taken again, new jobs succeed with no
    restart."""
    # With no replica attached, this makes Redis refuse every write ("NOREPLICAS ...").
    redis.config_set("min-replicas-to-write", 1)
    try:

        def failing() -> dict | None:
            collector = app.client.get("/api/v1/healthz").json()["collector"]
            return collector if collector["failing"] else None

        seen = wait_for(failing, 30, what="the collector to meet the refused writes")
        assert "NOREPLICAS" in seen["last_error"] and seen["running"], seen
    finally:
        redis.config_set("min-replicas-to-write", 0)
    job_id = app.submit(prompt="after the disk was freed", backend="preview", num_frames=2).json()["id"]
    assert app.wait_done(job_id)["status"] == "succeeded"
    health = app.client.get("/api/v1/healthz").json()
    assert health["ok"] and health["collector"]["running"] and not health["collector"]["failing"], health
