"""Worker duty cycle: how much of a busy worker's time goes to the backend, and our overhead per job.

Ours: N preview jobs paced to P seconds each through worker.py (SimpleWorker subclass, status
writes, result handed back through Redis). Baseline in the same run: plain RQ SimpleWorker
running a function that sleeps P seconds. Overhead per job = (wall - time in the job) / N.

    python -m bench.worker_duty [--jobs 10] [--pace 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from redis import Redis
from rq import Queue

from bench.common import record
from dailies.app.jobs import Jobs
from dailies.app.visitors import Visitor
from dailies.contract import keys
from dailies.contract.settings import Settings
from tests.harness import Processes, base_env, start_redis_server, wait_for


def baseline_job(pace: float) -> tuple[float, float]:
    start = time.time()
    time.sleep(pace)
    return start, time.time()


def measure(spans: list[tuple[float, float]]) -> dict[str, float]:
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    busy = sum(end - start for start, end in spans)
    return {
        "jobs": len(spans),
        "wall_s": round(wall, 3),
        "busy_s": round(busy, 3),
        "duty_cycle": round(busy / wall, 4),
        "overhead_ms_per_job": round((wall - busy) / len(spans) * 1000, 2),
    }


def ours(procs: Processes, url: str, jobs: int, pace: float) -> dict[str, float]:
    redis = Redis.from_url(url)
    redis.flushall()
    procs.worker(url, DAILIES_PREVIEW_PACE=str(pace))
    submit = Jobs(redis, Settings.from_env({}), availability=lambda b: b.availability())
    ids = [
        submit.submit(
            {"prompt": f"duty {i}", "backend": "preview", "num_frames": 12, "width": 128, "height": 128},
            Visitor(f"bench-{i}"),
        ).spec.id
        for i in range(jobs)
    ]
    wait_for(lambda: redis.llen("dailies:collect") == jobs, timeout=jobs * pace * 3 + 30, what="all jobs")
    spans = []
    for job_id in ids:
        meta = json.loads(redis.hget(keys.result(job_id), "meta"))
        assert float(redis.hget(keys.job(job_id), "started")) == meta["started"]
        spans.append((meta["started"], meta["finished"]))
    procs.stop_all()
    return measure(spans)


def baseline(procs: Processes, url: str, jobs: int, pace: float) -> dict[str, float]:
    redis = Redis.from_url(url)
    redis.flushall()
    queue = Queue("baseline", connection=redis)
    queued = [queue.enqueue("bench.worker_duty.baseline_job", pace, result_ttl=600) for _ in range(jobs)]
    procs.start(
        ["-m", "rq.cli", "worker", "--url", url, "--worker-class", "rq.SimpleWorker", "--burst", "baseline"],
        base_env(),
        "baseline-worker",
    ).proc.wait(jobs * pace * 3 + 30)
    return measure([job.latest_result().return_value for job in queued])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--pace", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis_proc, url = start_redis_server(Path(tmp))
        procs = Processes(Path(tmp))
        try:
            base = baseline(procs, url, args.jobs, args.pace)
            mine = ours(procs, url, args.jobs, args.pace)
        finally:
            procs.stop_all()
            redis_proc.terminate()
    record(
        "worker_duty",
        {
            "command": f"python -m bench.worker_duty --jobs {args.jobs} --pace {args.pace}",
            "pace_s": args.pace,
            "ours": mine,
            "baseline_rq_simpleworker": base,
            "overhead_ratio_vs_baseline": round(
                mine["overhead_ms_per_job"] / max(base["overhead_ms_per_job"], 0.01), 2
            ),
            "target": "duty cycle >= 0.99, <= 20 ms overhead per job",
        },
    )


if __name__ == "__main__":
    main()
