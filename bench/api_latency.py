"""Submit and status latency with many clients at once, against the real app, Redis and a worker.

C clients each loop for D seconds: submit a preview job, then ask for its status three times,
waiting I seconds between requests as the page does (it polls every 0.5 s). Baseline in the same
run: the same clients at the same pace fetching a static file from the same server (the cost of
the server itself). Then the same mix with no waiting gives the server's capacity (requests/s).
Reports p50/p99 and ratios to the baseline.

    python -m bench.api_latency [--clients 50] [--seconds 20] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import record, summary_ms
from tests.harness import Processes, start_app, start_redis_server


async def client_loop(
    client: httpx.AsyncClient, until: float, i: int, interval: float, timings: dict[str, list[float]]
) -> None:
    await asyncio.sleep(random.uniform(0, interval))  # clients do not arrive in lockstep
    n = 0
    while time.monotonic() < until:
        n += 1
        t = time.perf_counter()
        answer = await client.post(
            "/api/v1/jobs",
            json={"prompt": f"client {i} job {n}", "backend": "preview", "num_frames": 2, "width": 64, "height": 64},
        )
        timings["submit"].append(time.perf_counter() - t)
        assert answer.status_code == 202, answer.text
        for _ in range(3):
            await asyncio.sleep(interval)
            t = time.perf_counter()
            status = await client.get(f"/api/v1/jobs/{answer.json()['id']}")
            timings["status"].append(time.perf_counter() - t)
            assert status.status_code == 200
        await asyncio.sleep(interval)


async def baseline_loop(
    client: httpx.AsyncClient, until: float, interval: float, timings: dict[str, list[float]]
) -> None:
    await asyncio.sleep(random.uniform(0, interval))
    while time.monotonic() < until:
        t = time.perf_counter()
        assert (await client.get("/static/dailies.css")).status_code == 200
        timings["static"].append(time.perf_counter() - t)
        await asyncio.sleep(interval)


async def run(url: str, clients: int, seconds: float, interval: float) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"submit": [], "status": [], "static": []}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        until = time.monotonic() + seconds / 2
        await asyncio.gather(*(baseline_loop(client, until, interval, timings) for _ in range(clients)))
        until = time.monotonic() + seconds / 2
        await asyncio.gather(*(client_loop(client, until, i, interval, timings) for i in range(clients)))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds each client waits between requests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc, url = start_redis_server(Path(tmp))
        procs = Processes(Path(tmp))
        try:
            procs.worker(url)
            app = start_app(
                procs,
                Path(tmp),
                url,
                DAILIES_USER_MAX_ACTIVE="1000000",
                DAILIES_USER_MAX_PER_HOUR="1000000",
                DAILIES_QUEUE_MAX="1000000",
            )
            timings = asyncio.run(run(app.url, args.clients, args.seconds, args.interval))
            saturated = asyncio.run(run(app.url, args.clients, args.seconds / 2, 0.0))
            capacity = {name: round(len(values) / (args.seconds / 4), 1) for name, values in saturated.items()}
        finally:
            procs.stop_all()
            redis_proc.terminate()
    result = {name: summary_ms(values) for name, values in timings.items()}
    record(
        "api_latency",
        {
            "command": f"python -m bench.api_latency --clients {args.clients} --seconds {args.seconds} "
            f"--interval {args.interval}",
            "clients": args.clients,
            "interval_s": args.interval,
            **result,
            "capacity_requests_per_s_no_waiting": capacity,
            "p99_ratio_vs_static": {
                k: round(result[k]["p99_ms"] / result["static"]["p99_ms"], 2) for k in ("submit", "status")
            },
            "target": "submit and status p99 <= 50 ms with 50 clients",
        },
    )


if __name__ == "__main__":
    main()
