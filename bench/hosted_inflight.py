"""In-flight capacity of one hosted worker: N fal jobs against a loopback fal server.

`python bench/hosted_inflight.py [--jobs 32] [--polls 3]`: starts a private redis-server, the
loopback provider server (tests/hosted_servers.py; each remote job answers "not yet" `--polls`
times, about 2 s apart, so it takes several seconds) and one real worker process serving `fal`;
submits N jobs through dailies.jobs.Jobs and samples, every 0.1 s, how many remote jobs are in
flight at the server and the worker's resident memory. Writes bench/results/hosted_inflight.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backends.base import Availability  # noqa: E402
from dailies.config import Settings  # noqa: E402
from dailies.jobs import COLLECT, Jobs, job_key  # noqa: E402
from tests.hosted_servers import HostedServer, worker_env  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "hosted_inflight.json"))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hosted-bench-"))
    port = free_port()
    redis_proc = subprocess.Popen(
        [shutil.which("redis-server"), "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    redis = Redis.from_url(url)
    while True:
        try:
            redis.ping()
            break
        except Exception:
            time.sleep(0.05)
    with HostedServer() as server, open(folder / "worker.log", "wb") as log:
        server.script.polls = args.polls
        env = {**os.environ, "REDIS_URL": url, "DAILIES_QUEUE_MAX": "10000", **worker_env(server)}
        worker = subprocess.Popen(
            [sys.executable, "worker.py", "--backends", "fal", "--name", "bench"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            while not redis.exists("rq:worker:bench"):
                time.sleep(0.05)
            idle_rss = rss_mb(worker.pid)
            settings = Settings.from_env(
                {"REDIS_URL": url, "DAILIES_USER_MAX_ACTIVE": "100000", "DAILIES_QUEUE_MAX": "100000"}
            )
            jobs = Jobs(redis, settings, lambda backend: Availability(True))
            start = time.monotonic()
            ids = [
                jobs.submit({"prompt": f"bench {i}", "backend": "fal"}, user=f"user{i}")["id"] for i in range(args.jobs)
            ]
            submitted_s = time.monotonic() - start
            max_active, max_rss, samples = 0, idle_rss, 0
            while redis.llen(COLLECT) + sum(redis.hget(job_key(i), "status") == b"failed" for i in ids) < args.jobs:
                max_active = max(max_active, server.active())
                max_rss = max(max_rss, rss_mb(worker.pid))
                samples += 1
                time.sleep(0.1)
            total_s = time.monotonic() - start
            failed = sum(redis.hget(job_key(i), "status") == b"failed" for i in ids)
        finally:
            worker.terminate()
            worker.wait(15)
    redis_proc.terminate()
    redis_proc.wait(10)
    one_job_s = 2.0 * (args.polls + 1)  # fal polls every 2 s; the job is done on poll polls+1
    result = {
        "what": "one hosted worker (fal backend) against a loopback fal queue server",
        "jobs": args.jobs,
        "remote_job_s_approx": one_job_s,
        "max_remote_jobs_in_flight": max_active,
        "succeeded": args.jobs - failed,
        "failed": failed,
        "submit_all_s": round(submitted_s, 3),
        "all_done_s": round(total_s, 2),
        "serial_would_take_s": round(one_job_s * args.jobs, 1),
        "worker_rss_mb_idle": round(idle_rss, 1),
        "worker_rss_mb_max": round(max_rss, 1),
        "server_requests": len(server.calls),
        "samples": samples,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
