"""In-flight capacity of one hosted worker: N fal jobs against a loopback fal queue server.

One real worker process serving `fal`; each remote job answers "not yet" `--polls` times, 2 s
apart (fal's poll interval), so it takes about 2 * (polls + 1) seconds. The jobs go in through
dailies.app.jobs.Jobs; every 0.1 s we sample how many remote jobs are in flight at the server and
the worker's resident memory (it has no child processes).

    python -m bench.hosted_inflight [--jobs 32] [--polls 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from redis import Redis

from backends.base import Availability
from bench.common import record
from dailies.app.jobs import Jobs
from dailies.app.visitors import Visitor
from dailies.contract import keys
from dailies.contract.settings import Settings
from tests.harness import Processes, start_redis_server
from tests.hosted_servers import HostedServer, worker_env

POLL_S = 2.0  # FalBackend.poll_every


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) / 1024


def run(procs: Processes, url: str, server: HostedServer, jobs: int) -> dict[str, float | int]:
    redis = Redis.from_url(url)
    worker = procs.worker(url, "fal", **worker_env(server)).proc
    idle = rss_mb(worker.pid)
    # The key lives in the worker only (which checked it at start), as in the app.
    served = Availability(True)
    submit = Jobs(redis, Settings.from_env({"DAILIES_QUEUE_MAX": str(jobs)}), availability=lambda b: served)
    start = time.monotonic()
    ids = [
        submit.submit({"prompt": f"in flight {i}", "backend": "fal"}, Visitor(f"bench-{i}")).spec.id
        for i in range(jobs)
    ]
    submitted = time.monotonic() - start
    most, peak = 0, idle
    while redis.llen(keys.COLLECT) + sum(redis.hget(keys.job(i), "status") == b"failed" for i in ids) < jobs:
        most, peak = max(most, server.active()), max(peak, rss_mb(worker.pid))
        time.sleep(0.1)
    return {
        "max_remote_jobs_in_flight": most,
        "succeeded": redis.llen(keys.COLLECT),
        "submit_all_s": round(submitted, 3),
        "all_done_s": round(time.monotonic() - start, 2),
        "worker_rss_mb_idle": round(idle, 1),
        "worker_rss_mb_max": round(peak, 1),
        "provider_requests": len(server.calls),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--polls", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, HostedServer() as server:
        server.script.polls = args.polls
        redis_proc, url = start_redis_server(Path(tmp))
        procs = Processes(Path(tmp))
        try:
            result = run(procs, url, server, args.jobs)
        finally:
            procs.stop_all()
            redis_proc.terminate()
    one_job = POLL_S * (args.polls + 1)
    record(
        "hosted_inflight" if args.jobs == 32 else f"hosted_inflight_{args.jobs}",
        {
            "command": f"python -m bench.hosted_inflight --jobs {args.jobs} --polls {args.polls}",
            "jobs": args.jobs,
            "remote_job_s": one_job,
            "one_at_a_time_would_take_s": one_job * args.jobs,
            **result,
            "target": "one hosted worker keeps >= 16 remote jobs in flight",
        },
    )


if __name__ == "__main__":
    main()
