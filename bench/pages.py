"""Watching pages: how many open pages, each following a running job, see every change within 1 s.

N running jobs change once a second each (progress written into their Redis hashes the way a
worker writes it, staggered). N virtual visitors each watch one of them, open loop, against the
real app:

- ours: the page's real update traffic, one `GET /api/v1/jobs/{id}/events` stream per watched
  job (the page's EventSource), fed by the app's one update loop;
- baseline, in the same run: a plain Gradio page polling the same job state with a 0.5 s
  `gr.Timer`, as the page did before (one `POST /gradio_api/run/predict` per visitor every 0.5 s,
  sent on time whether or not the last one was answered).

Update delay = when a page first sees a change (or a later one) minus when it was written,
counted from a second after every page has had its first answer (the time that took is
reported as `connect_s`); a change still unseen 1 s before the end counts with the time it
waited so far. Meanwhile a probe
submits real preview jobs, asks for a status and pages the gallery, to show the rest of the app
stays responsive. The last line printed is one JSON object with `pages`, `update_delay_p99_s`
and `baseline_pages_at_1s`.

    python -m bench.pages [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from redis import Redis

from bench.common import percentile, record, summary_ms
from dailies.contract import keys
from dailies.contract.spec import new_id
from tests.harness import Processes, base_env, free_port, start_app, start_redis_server, wait_for

CHANGE_EVERY_S = 1.0  # each running job's progress moves once a second (about one denoising step)
TICK_S = 0.5  # the baseline page's Timer
SETTLE_S = 1.0  # changes are counted from this long after every page has its first answer
CONNECT_S = 60.0  # pages not connected by then count with the changes they miss
TARGET_S = 1.0
PROGRESS = re.compile(r'value="([0-9.]+)"')


@dataclass
class Changes:
    """What the state writer wrote (change k of a job sets progress k/1000) and what the pages saw."""

    written: dict[str, list[float]] = field(default_factory=dict)
    seen: dict[tuple[int, str], int] = field(default_factory=dict)
    delays: list[float] = field(default_factory=list)
    connected: set[int] = field(default_factory=set)
    counted_from: float = float("inf")  # set once the pages are connected

    def saw(self, page: int, job_id: str, progress: float) -> None:
        now = time.monotonic()
        self.connected.add(page)
        k = round(progress * 1000)
        first = self.seen.get((page, job_id), 0) + 1
        if k < first:
            return
        self.seen[(page, job_id)] = k
        times = self.written[job_id]
        last = min(k, len(times) - 1)
        self.delays.extend(now - times[i] for i in range(first, last + 1) if times[i] >= self.counted_from)

    def unseen_delays(self, pages: dict[int, str], until: float) -> list[float]:
        """Changes no page saw by `until` - TARGET_S, with the time they waited so far."""
        waited = []
        for page, job_id in pages.items():
            times = self.written[job_id]
            for i in range(self.seen.get((page, job_id), 0) + 1, len(times)):
                if self.counted_from <= times[i] <= until - TARGET_S:
                    waited.append(until - times[i])
        return waited


def running_jobs(redis: Redis, n: int) -> list[str]:
    """N jobs in the state a worker leaves a running job in: our hash, and RQ's job marked started."""
    now = time.time()
    ids = [new_id() for _ in range(n)]
    request = {"prompt": "a paper boat on a rainy street", "backend": "preview", "width": 64, "height": 64}
    with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hset(
                keys.job(job_id),
                mapping={
                    "status": "running",
                    "backend": "preview",
                    "created": now,
                    "started": now,
                    "heartbeat": now,
                    "progress": 0,
                    "request": json.dumps({**request, "id": job_id}),
                },
            )
            pipe.hset(f"rq:job:{job_id}", mapping={"status": "started"})
        pipe.execute()
    return ids


def write_changes(redis: Redis, ids: list[str], changes: Changes, stop: threading.Event) -> None:
    """Each job's progress moves every CHANGE_EVERY_S, jobs spread evenly over the second."""
    for job_id in ids:
        changes.written[job_id] = [0.0]
    start = time.monotonic()
    slots = 20
    tick = 0
    while not stop.is_set():
        due = [job_id for i, job_id in enumerate(ids) if i % slots == tick % slots]
        at = time.monotonic()
        with redis.pipeline(transaction=False) as pipe:
            for job_id in due:
                k = len(changes.written[job_id])
                pipe.hset(keys.job(job_id), mapping={"progress": k / 1000, "heartbeat": time.time()})
                changes.written[job_id].append(at)
            pipe.execute()
        tick += 1
        stop.wait(max(0.0, start + tick * CHANGE_EVERY_S / slots - time.monotonic()))


async def sse_page(client: httpx.AsyncClient, page: int, job_id: str, changes: Changes) -> None:
    async with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as answer:
        assert answer.status_code == 200, answer.status_code
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                changes.saw(page, job_id, json.loads(line[6:])["progress"])


async def polling_page(
    client: httpx.AsyncClient, page: int, job_id: str, changes: Changes, tick: dict[str, int]
) -> None:
    body = {"data": [[job_id], None], "event_data": None, "session_hash": f"page{page}-{job_id}", **tick}
    await asyncio.sleep(page % 50 * TICK_S / 50)  # pages opened at different moments
    pending = set()

    async def one() -> None:
        answer = await client.post("/gradio_api/run/predict", json=body)
        found = PROGRESS.search(answer.json()["data"][0])
        if found:
            changes.saw(page, job_id, float(found.group(1)))

    next_at = time.monotonic()
    try:
        while True:
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += TICK_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        for task in pending:
            task.cancel()


async def probe(client: httpx.AsyncClient, job_id: str, timings: dict[str, list[float]]) -> None:
    """The rest of the app while the pages watch: a status and a gallery page 4 times a second, a submit each second."""
    n = 0
    while True:
        n += 1
        calls = [
            ("status", "GET", f"/api/v1/jobs/{job_id}", None),
            ("gallery", "GET", "/api/v1/generations?limit=24", None),
        ]
        if n % 4 == 0:
            calls.append(("submit", "POST", "/api/v1/jobs", tiny_job(n)))
        for name, method, path, body in calls:
            t = time.perf_counter()
            answer = await client.request(method, path, json=body)
            timings[name].append(time.perf_counter() - t)
            assert answer.status_code in (200, 202), answer.text
        await asyncio.sleep(0.25)


async def probe_alone(url: str, redis: Redis, seconds: float, timings: dict[str, list[float]]) -> None:
    """The same probe with no page watching: what this machine gives the app's calls at rest."""
    (job_id,) = running_jobs(redis, 1)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        task = asyncio.create_task(probe(client, job_id, timings))
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def tiny_job(n: int) -> dict:
    return {"prompt": f"probe job {n}", "backend": "preview", "num_frames": 2, "width": 64, "height": 64}


async def watch(
    url: str,
    redis: Redis,
    pages: int,
    seconds: float,
    page: Callable[[httpx.AsyncClient, int, str, Changes], Awaitable[None]],
    timings: dict[str, list[float]] | None = None,
) -> dict:
    """N pages each watching its own running job for `seconds`; the update delays they saw."""
    ids = running_jobs(redis, pages)
    changes = Changes()
    stop = threading.Event()
    writer = threading.Thread(target=write_changes, args=(redis, ids, changes, stop), daemon=True)
    limits = httpx.Limits(max_connections=min(4 * pages, 1000), max_keepalive_connections=min(4 * pages, 1000))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(60, pool=None)) as client:
        writer.start()
        tasks = [asyncio.create_task(page(client, i, job_id, changes)) for i, job_id in enumerate(ids)]
        opened = time.monotonic()
        while len(changes.connected) < pages and time.monotonic() - opened < CONNECT_S:
            await asyncio.sleep(0.05)
        connect_s = time.monotonic() - opened
        if timings is not None:
            tasks.append(asyncio.create_task(probe(client, ids[0], timings)))
        changes.counted_from = time.monotonic() + SETTLE_S
        await asyncio.sleep(SETTLE_S + seconds)
        until = time.monotonic()
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        failed = [t.exception() for t in tasks if not t.cancelled() and t.exception() is not None]
    writer.join()
    redis.delete(*[keys.job(j) for j in ids], *[f"rq:job:{j}" for j in ids])
    if failed:
        raise RuntimeError(f"{len(failed)} pages failed, first: {failed[0]!r}")
    delays = changes.delays + changes.unseen_delays(dict(enumerate(ids)), until)
    return {
        "pages": pages,
        "connect_s": round(connect_s, 2),
        "changes": len(delays),
        "unseen": len(delays) - len(changes.delays),
        "update_delay_p50_s": round(percentile(delays, 50), 3) if delays else None,
        "update_delay_p99_s": round(percentile(delays, 99), 3) if delays else None,
    }


def start_baseline(procs: Processes, tmp: Path, redis_url: str) -> str:
    """The plain polling page as its own server (this module with --serve-baseline)."""
    port = free_port()
    env = base_env(REDIS_URL=redis_url, DAILIES_DATA=str(tmp / "baseline"), GRADIO_SERVER_PORT=str(port))
    proc = procs.start(["-m", "bench.pages", "--serve-baseline"], env, "baseline")
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.proc.poll() is not None:
            raise RuntimeError(f"baseline page exited:\n{proc.output()}")
        try:
            return httpx.get(f"{url}/config").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, 90, what="the baseline page")
    return url


def tick_ids(url: str) -> dict[str, int]:
    """The Timer's event as the page's own script sends it: fn_index and trigger_id from /config."""
    config = httpx.get(f"{url}/config").json()
    timer = next(c["id"] for c in config["components"] if c["type"] == "timer")
    dependency = next(d for d in config["dependencies"] if [timer, "tick"] in d["targets"])
    return {"fn_index": dependency["id"], "trigger_id": timer}


def serve_baseline() -> None:
    """A plain Gradio page that asks for its jobs' state every 0.5 s, as Dailies' page once did."""
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    from dailies.app.errors import ApiError
    from dailies.app.service import Service
    from dailies.contract.settings import Settings

    settings = Settings.from_env()
    service = Service(settings, Redis.from_url(settings.redis_url), embedded=False)

    def tick(jobs: list, current: str):
        items = []
        for job_id in jobs or []:
            try:
                s = service.jobs.status(job_id)
            except ApiError:
                continue
            items.append(
                f'<li data-status="{s.status}"><progress max="1" value="{s.progress:.3f}"></progress> '
                f"{s.status} {s.progress * 100:.0f}%</li>"
            )
        return "<ul>" + "".join(items) + "</ul>", current, gr.Timer(active=True)

    with gr.Blocks(analytics_enabled=False) as demo:
        my_jobs = gr.BrowserState([], storage_key="jobs")
        shown = gr.State("")
        listing = gr.HTML("")
        timer = gr.Timer(TICK_S)
        outputs = [listing, shown, timer]
        timer.tick(tick, [my_jobs, shown], outputs, queue=False, show_progress="hidden", api_visibility="private")
    app = gr.mount_gradio_app(FastAPI(), demo, path="")
    uvicorn.run(app, host="127.0.0.1", port=settings.server_port, log_level="warning")


def ramp(run: Callable[[int], dict], steps: list[int], stop_over: float) -> list[dict]:
    """Run each step in turn, stopping after the first whose p99 is over `stop_over` seconds."""
    points = []
    for pages in steps:
        points.append(run(pages))
        print(json.dumps(points[-1]), file=sys.stderr, flush=True)
        if (points[-1]["update_delay_p99_s"] or 0) > stop_over:
            break
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps, shorter runs (under 3 minutes)")
    parser.add_argument("--pages", type=int, default=500, help="the page count that must hold p99 <= 1 s")
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        return serve_baseline()
    seconds = 10.0 if args.quick else 30.0
    ours_steps = [100, args.pages] if args.quick else [50, 100, 250, args.pages, 2 * args.pages]
    baseline_steps = [10, 25, 50, 100] if args.quick else [10, 25, 50, 75, 100, 150, 200]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        redis_proc, redis_url = start_redis_server(tmp)
        redis = Redis.from_url(redis_url)
        procs = Processes(tmp)
        try:
            procs.worker(redis_url)
            app = start_app(procs, tmp, redis_url, DAILIES_USER_MAX_ACTIVE="1000000", DAILIES_QUEUE_MAX="1000000")
            baseline_url = start_baseline(procs, tmp, redis_url)
            tick = tick_ids(baseline_url)
            timings: dict[str, list[float]] = {"submit": [], "status": [], "gallery": []}
            at_rest: dict[str, list[float]] = {"submit": [], "status": [], "gallery": []}
            asyncio.run(probe_alone(app.url, redis, seconds, at_rest))

            def ours(pages: int) -> dict:
                probe_timings = timings if pages == args.pages else None
                return asyncio.run(watch(app.url, redis, pages, seconds, sse_page, probe_timings))

            def baseline(pages: int) -> dict:
                def page(client: httpx.AsyncClient, i: int, job_id: str, changes: Changes) -> Awaitable[None]:
                    return polling_page(client, i, job_id, changes, tick)

                return asyncio.run(watch(baseline_url, redis, pages, seconds, page))

            baseline_points = ramp(baseline, baseline_steps, stop_over=5 * TARGET_S)  # past one noisy step
            ours_points = ramp(ours, ours_steps, stop_over=10 * TARGET_S)
        finally:
            procs.stop_all()
            redis_proc.terminate()
    at_target = next(p for p in ours_points if p["pages"] == args.pages)
    held = [p["pages"] for p in baseline_points if (p["update_delay_p99_s"] or 0) <= TARGET_S]
    summary = {
        "pages": args.pages,
        "update_delay_p99_s": at_target["update_delay_p99_s"],
        "baseline_pages_at_1s": max(held, default=0),
    }
    record(
        "pages_quick" if args.quick else "pages",
        {
            "command": "python -m bench.pages" + (" --quick" if args.quick else ""),
            "change_every_s": CHANGE_EVERY_S,
            "seconds_per_step": seconds,
            "ours": ours_points,
            "baseline_polling_0_5s": baseline_points,
            "rest_of_app_at_target": {name: summary_ms(values) for name, values in timings.items() if values},
            "rest_of_app_no_pages": {name: summary_ms(values) for name, values in at_rest.items() if values},
            "cpu_count": os.cpu_count(),
            "wall_s": round(time.monotonic() - started, 1),
            **summary,
            "target": f"{args.pages} pages at update delay p99 <= {TARGET_S} s; submit and gallery p99 <= 50 ms",
        },
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
