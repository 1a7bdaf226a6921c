"""The path of one job through the JSON API, a real Redis and a real worker process."""

from __future__ import annotations

import re

import httpx
from redis import Redis

from dailies.contract.media import probe_mp4
from tests.conftest import App, Processes, start_app, wait_for
from tests.published_rules import published


def test_preview_job_end_to_end(app: App) -> None:
    answer = app.submit(prompt="A lighthouse keeper feeding seagulls", backend="preview", seed=7)
    assert answer.status_code == 202
    body = answer.json()
    assert re.fullmatch(r"[0-9a-f]{24}", body["id"]) and body["status"] == "queued" and body["seed"] == 7

    status = app.wait_done(body["id"])
    assert status["status"] == "succeeded", status
    assert status["progress"] == 1.0 and status["error"] is None
    result = status["result"]
    rules = published("preview")  # no size, length or fps asked: the backend's published defaults
    assert result["seed"] == 7 and result["num_frames"] == rules.default_frames and result["fps"] == rules.fps

    video = app.client.get(result["video_url"])
    assert video.status_code == 200
    info = probe_mp4(video.content)
    assert (info.codec, info.pix_fmt, info.num_frames) == ("h264", "yuv420p", rules.default_frames)
    assert (info.width, info.height) == rules.default_size
    assert app.client.get(result["poster_url"]).content[:2] == b"\xff\xd8"

    listed = app.client.get("/api/v1/generations", params={"q": "seagulls"}).json()
    assert [(g["id"], g["seed"]) for g in listed["items"]] == [(body["id"], 7)]
    one = app.client.get(f"/api/v1/generations/{body['id']}").json()
    assert one["prompt"] == "A lighthouse keeper feeding seagulls"
    assert one["params"] == {"motion": 1.0, "waves": 3, "sound": False} and one["timings"]["run_s"] > 0


def test_same_seed_same_video_and_random_seed_is_returned(app: App) -> None:
    ids = [
        app.submit(prompt="tide pools at noon", backend="preview", seed=11, num_frames=6).json()["id"] for _ in range(2)
    ]
    videos = [app.client.get(app.wait_done(i)["result"]["video_url"]).content for i in ids]
    assert videos[0] == videos[1]

    random = app.submit(prompt="tide pools at noon", backend="preview", num_frames=6).json()
    done = app.wait_done(random["id"])
    assert isinstance(random["seed"], int) and done["result"]["seed"] == random["seed"]
    assert app.client.get(done["result"]["video_url"]).content != videos[0] or random["seed"] == 11


def test_duration_maps_to_frames_and_parameters_reach_the_backend(app: App) -> None:
    job = app.submit(prompt="wind", backend="preview", duration_s=1.5, fps=8, width=128, height=64, waves=1).json()
    result = app.wait_done(job["id"])["result"]
    assert (result["num_frames"], result["fps"], result["width"], result["height"]) == (12, 8, 128, 64)
    assert app.client.get(f"/api/v1/generations/{job['id']}").json()["params"]["waves"] == 1
    assert probe_mp4(app.client.get(result["video_url"]).content).num_frames == 12


def test_gallery_pages_newest_or_oldest_first_and_filters(app: App) -> None:
    ids = [
        app.submit(prompt=f"page test number {i}", backend="preview", num_frames=2, seed=i).json()["id"]
        for i in range(3)
    ]
    for i in ids:
        app.wait_done(i)
    first = app.client.get("/api/v1/generations", params={"limit": 2}).json()
    assert [g["id"] for g in first["items"]] == [ids[2], ids[1]] and first["next_cursor"]
    second = app.client.get("/api/v1/generations", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [g["id"] for g in second["items"]] == [ids[0]] and second["next_cursor"] is None
    oldest = app.client.get("/api/v1/generations", params={"limit": 2, "order": "oldest"}).json()
    assert [g["id"] for g in oldest["items"]] == ids[:2]
    after = {"limit": 2, "order": "oldest", "cursor": oldest["next_cursor"]}
    assert [g["id"] for g in app.client.get("/api/v1/generations", params=after).json()["items"]] == [ids[2]]
    assert app.client.get("/api/v1/generations", params={"backend": "ltx-video"}).json()["items"] == []
    assert len(app.client.get("/api/v1/generations", params={"q": "numb"}).json()["items"]) == 3
    missing = app.client.get("/api/v1/generations/0123456789abcdef01234567")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_cancel_queued_job_leaves_the_queue_at_once(processes: Processes, tmp_path, redis_url: str) -> None:
    app = start_app(processes, tmp_path, redis_url)  # no worker: jobs stay queued
    redis = Redis.from_url(redis_url)
    # With no worker the backend counts as unavailable in non-embedded mode.
    refused = app.submit(prompt="nobody is listening", backend="preview")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "backend_unavailable"
    assert redis.llen("rq:queue:dailies:preview") == 0

    processes.worker(redis_url, DAILIES_PREVIEW_PACE="20")
    # The app looks at the workers again after a few seconds: then the backend is there.
    running = wait_for(lambda: (a := app.submit(prompt="slow one", backend="preview")).status_code == 202 and a.json())
    wait_for(lambda: app.client.get(f"/api/v1/jobs/{running['id']}").json()["status"] == "running", what="running")
    queued = app.submit(prompt="waiting", backend="preview").json()
    status = app.client.get(f"/api/v1/jobs/{queued['id']}").json()
    assert status["status"] == "queued" and status["position"] == 0

    assert app.client.post(f"/api/v1/jobs/{queued['id']}/cancel").status_code == 202
    assert app.client.get(f"/api/v1/jobs/{queued['id']}").json()["status"] == "canceled"
    assert redis.llen("rq:queue:dailies:preview") == 0

    # A running job stops at its next step.
    assert app.client.post(f"/api/v1/jobs/{running['id']}/cancel").status_code == 202
    assert app.wait_done(running["id"])["status"] == "canceled"
    again = app.client.post(f"/api/v1/jobs/{running['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_finished"
    assert app.client.get("/api/v1/generations").json()["items"] == []


def test_queued_jobs_estimate_their_wait_from_the_backends_recent_runs(
    processes: Processes, tmp_path, redis_url: str
) -> None:
    processes.worker(redis_url, DAILIES_PREVIEW_PACE="3")
    app = start_app(processes, tmp_path, redis_url, DAILIES_USER_MAX_ACTIVE="10")
    first = app.wait_done(app.submit(prompt="the first run", backend="preview").json()["id"])
    run_s = app.client.get(f"/api/v1/generations/{first['id']}").json()["timings"]["run_s"]

    running = app.submit(prompt="running now", backend="preview").json()["id"]
    wait_for(lambda: app.client.get(f"/api/v1/jobs/{running}").json()["status"] == "running", what="running")
    waiting = [app.submit(prompt=f"waiting {i}", backend="preview").json()["id"] for i in range(2)]
    statuses = [app.client.get(f"/api/v1/jobs/{j}").json() for j in waiting]
    # Each queued job waits for the ones ahead and itself, each as long as the last run took.
    assert [(s["status"], s["position"], s["eta_s"]) for s in statuses] == [
        ("queued", 0, round(run_s, 1)),
        ("queued", 1, round(2 * run_s, 1)),
    ]
    for job_id in [running, *waiting]:
        app.client.post(f"/api/v1/jobs/{job_id}/cancel")


def test_progress_is_visible_while_running(processes: Processes, tmp_path, redis_url: str) -> None:
    processes.worker(redis_url, DAILIES_PREVIEW_PACE="3")
    app = start_app(processes, tmp_path, redis_url)
    job = app.submit(prompt="paced", backend="preview", num_frames=12).json()
    seen = wait_for(
        lambda: (
            (s := app.client.get(f"/api/v1/jobs/{job['id']}").json())["status"] == "running"
            and 0.2 < s["progress"] < 0.9
            and s
        ),
        what="partial progress",
    )
    assert seen["elapsed_s"] > 0 and seen["eta_s"] is not None and seen["eta_s"] > 0
    assert app.wait_done(job["id"])["status"] == "succeeded"


def test_user_limit(processes: Processes, tmp_path, redis_url: str) -> None:
    processes.worker(redis_url, DAILIES_PREVIEW_PACE="30")
    app = start_app(processes, tmp_path, redis_url, DAILIES_USER_MAX_ACTIVE="2")
    for _ in range(2):
        assert app.submit(prompt="mine", backend="preview").status_code == 202
    third = app.submit(prompt="mine", backend="preview")
    assert third.status_code == 429 and third.json()["error"]["code"] == "too_many_jobs"


def test_healthz_and_backends(app: App) -> None:
    health = app.client.get("/api/v1/healthz").json()
    assert health["redis"]["ok"] and health["workers"][0]["queues"] == ["dailies:preview"]
    listed = app.client.get("/api/v1/backends").json()["backends"]
    preview = next(b for b in listed if b["name"] == "preview")
    assert preview["available"] and preview["kind"] == "preview" and "not a model" in preview["display_name"]
    assert {p["name"] for p in preview["params"]} == {"motion", "waves", "sound"}


def test_unknown_job_and_route(app: App) -> None:
    for path in ("/api/v1/jobs/nope", "/api/v1/jobs/0123456789abcdef01234567", "/api/v1/nothing"):
        answer = app.client.get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    assert httpx.post(f"{app.url}/api/v1/jobs/nope/cancel").status_code == 404


def test_every_declared_parameter_value_renders(shared_app: App) -> None:
    for waves, motion in ((1, 0.0), (2, 4.0), (5, 1.0), (8, 2.5)):
        job = shared_app.submit(
            prompt="all the waves", backend="preview", waves=waves, motion=motion, num_frames=1, width=64, height=64
        ).json()
        assert shared_app.wait_done(job["id"])["status"] == "succeeded", (waves, motion)
