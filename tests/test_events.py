"""Pushed job updates: GET /api/v1/jobs/{id}/events through the real app, Redis and worker."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import App, Processes, start_app

ORDER = {"queued": 0, "running": 1, "succeeded": 2}


@pytest.fixture
def paced_app(processes: Processes, tmp_path: Path, redis_url: str) -> App:
    """A preview worker that spreads each render over 1.5 s, reporting progress as it goes."""
    processes.worker(redis_url, DAILIES_PREVIEW_PACE="1.5")
    return start_app(processes, tmp_path, redis_url)


async def events(url: str, job_id: str) -> list[dict]:
    """Every status event of one stream, read until the server ends it."""
    received = []
    async with httpx.AsyncClient(timeout=60) as client:
        async with client.stream("GET", f"{url}/api/v1/jobs/{job_id}/events") as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            async for line in answer.aiter_lines():
                if line.startswith("data: "):
                    received.append(json.loads(line.removeprefix("data: ")))
    return received


def test_a_job_streams_from_queued_to_succeeded(paced_app: App) -> None:
    # The first job keeps the only worker busy, so the second is seen waiting in the queue.
    first = paced_app.submit(prompt="a kettle on the stove", backend="preview", num_frames=6, width=64, height=64)
    second = paced_app.submit(prompt="steam over a cup", backend="preview", num_frames=6, width=64, height=64)
    job_id = second.json()["id"]

    received = asyncio.run(events(paced_app.url, job_id))

    states = [e["status"] for e in received]
    assert states[0] == "queued" and states[-1] == "succeeded", states
    assert [ORDER[s] for s in states] == sorted(ORDER[s] for s in states), states
    running = [e["progress"] for e in received if e["status"] == "running"]
    assert len(running) >= 2 and running == sorted(running), running
    assert all(e["id"] == job_id and e["request"]["prompt"] == "steam over a cup" for e in received)
    # No two events in a row say the same thing: only changes are sent.
    keys = [(e["status"], e["progress"], e["message"], e["position"]) for e in received]
    assert all(a != b for a, b in zip(keys, keys[1:], strict=False))
    last = received[-1]
    assert last["progress"] == 1.0 and paced_app.client.get(last["result"]["video_url"]).status_code == 200
    assert paced_app.client.get(f"/api/v1/jobs/{job_id}").json()["result"] == last["result"]
    assert paced_app.wait_done(first.json()["id"])["status"] == "succeeded"


def test_many_watchers_of_one_job_all_see_it_end(paced_app: App, processes: Processes) -> None:
    """Twenty streams connected while the job waits in the queue (its worker paused until each
    has had its first event) all follow it to its end."""
    worker = processes.started[0]  # paced_app's worker
    worker.proc.send_signal(signal.SIGSTOP)
    try:
        job_id = paced_app.submit(prompt="a flag in the wind", backend="preview", num_frames=6, width=64, height=64)
        job_id = job_id.json()["id"]

        async def watch_all() -> list[list[dict]]:
            connected = asyncio.Semaphore(0)

            async def watch() -> list[dict]:
                received = []
                async with httpx.AsyncClient(timeout=60) as client:
                    async with client.stream("GET", f"{paced_app.url}/api/v1/jobs/{job_id}/events") as answer:
                        async for line in answer.aiter_lines():
                            if line.startswith("data: "):
                                received.append(json.loads(line.removeprefix("data: ")))
                                if len(received) == 1:
                                    connected.release()
                return received

            watchers = [asyncio.create_task(watch()) for _ in range(20)]
            for _ in watchers:
                await asyncio.wait_for(connected.acquire(), 60)
            worker.proc.send_signal(signal.SIGCONT)  # every stream is open: now the job may run
            return await asyncio.gather(*watchers)

        streams = asyncio.run(watch_all())
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    for s in streams:
        states = [e["status"] for e in s]
        assert states[0] == "queued" and "running" in states and states[-1] == "succeeded", states
    assert len({json.dumps(s[-1]["result"], sort_keys=True) for s in streams}) == 1
    # A finished job's stream is its final status, then the end.
    again = asyncio.run(events(paced_app.url, job_id))
    assert [e["status"] for e in again] == ["succeeded"]
    health = paced_app.client.get("/api/v1/healthz").json()
    assert health["updates"]["watched_jobs"] == 0


def test_a_stream_ends_failed_when_its_worker_dies(processes: Processes, tmp_path: Path, redis_url: str) -> None:
    """A job whose worker dies is queued again once (the app's reaper); when its second worker dies
    too, the stream ends failed."""
    beat = {"DAILIES_HEARTBEAT_S": "0.2"}
    workers = [processes.worker(redis_url, DAILIES_PREVIEW_PACE="30", **beat)]
    app = start_app(processes, tmp_path, redis_url, **beat)
    job_id = app.submit(prompt="doomed", backend="preview", num_frames=6, width=64, height=64).json()["id"]

    async def watch_and_kill() -> list[dict]:
        received = []
        async with httpx.AsyncClient(timeout=60) as client:
            async with client.stream("GET", f"{app.url}/api/v1/jobs/{job_id}/events") as answer:
                async for line in answer.aiter_lines():
                    if line.startswith("data: "):
                        received.append(json.loads(line.removeprefix("data: ")))
                        status = received[-1]["status"]
                        if status == "running" and workers[-1].proc.poll() is None:
                            workers[-1].stop(signal.SIGKILL)  # no end state will ever be written
                        elif status == "queued" and len(received) > 1 and len(workers) == 1:
                            workers.append(processes.worker(redis_url, DAILIES_PREVIEW_PACE="30", **beat))
        return received

    received = asyncio.run(watch_and_kill())
    assert [r["status"] for r in received].count("running") >= 2
    assert received[-1]["status"] == "failed" and "worker stopped 2 times" in received[-1]["error"]


def test_unknown_job_is_a_404_not_a_stream(paced_app: App) -> None:
    for job_id in ("0123456789abcdef01234567", "not-an-id"):
        answer = paced_app.client.get(f"/api/v1/jobs/{job_id}/events")
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


@pytest.mark.browser
def test_the_page_is_pushed_its_job_updates_without_a_timer(paced_app: App, browser) -> None:
    from playwright.sync_api import expect

    config = paced_app.client.get("/config").json()
    assert "timer" not in {c["type"] for c in config["components"]}
    page = browser.new_page()
    page.set_default_timeout(30_000)
    events, streams = [], []
    page.on("request", lambda r: events.append(r.url) if "/gradio_api/" in r.url and r.method == "POST" else None)
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    try:
        page.goto(paced_app.url)
        page.locator("#prompt textarea").fill("a <i>pushed</i> paper lantern")
        page.locator("#submit").click()
        job = page.locator("#jobs li.dailies-job").first
        expect(job).to_have_attribute("data-status", "running")
        expect(job.locator(".dailies-job-status")).to_contain_text("running")
        while_running = len(events)
        expect(job).to_have_attribute("data-status", "succeeded")
        expect(job.locator("video.dailies-job-video")).to_have_attribute("src", re.compile(r".+\.mp4"))
        expect(job.locator(".dailies-job-prompt")).to_have_text("a <i>pushed</i> paper lantern")
        job_id = job.get_attribute("data-id")
        assert streams == [f"{paced_app.url}/api/v1/jobs/{job_id}/events"]
        # While the job ran (1.5 s) the page asked the server nothing; its card drew the video itself.
        assert len(events) == while_running, events[while_running:]
    finally:
        page.close()
