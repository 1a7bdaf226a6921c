"""The longer fuzz run: the properties of tests/test_fuzz.py with many more generated requests and
a random seed (recorded, so a failure can be replayed), then the app restarted twice on the same
data. Records the counts by status code per kind of request.

    python -m bench.fuzz [--examples 1000] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import signal
import tempfile
import time
from pathlib import Path

from redis import Redis

from bench.common import record
from tests.fuzzing import Fuzzer, app_env
from tests.harness import Processes, start_app, start_redis_server
from tests.hub_server import HubServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000, help="generated requests per kind (four kinds)")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, recorded")
    args = parser.parse_args()
    seed = random.randrange(2**32) if args.seed is None else args.seed
    with tempfile.TemporaryDirectory() as tmp, HubServer() as hub:
        redis_proc, url = start_redis_server(Path(tmp))
        procs = Processes(Path(tmp))
        try:
            procs.worker(url)
            app = start_app(procs, Path(tmp), url, **app_env(hub.url))
            start = time.monotonic()
            outcome = Fuzzer(app.url, url, args.examples, seed).run()
            elapsed = time.monotonic() - start
            accepted = [k.decode().rsplit(":", 1)[1] for k in Redis.from_url(url).scan_iter("dailies:job:*")]
            ends = [app.wait_done(job_id, timeout=600)["status"] for job_id in accepted]
            for sig in (signal.SIGTERM, signal.SIGKILL):
                app.proc.stop(sig)
                app = start_app(procs, Path(tmp), url, **app_env(hub.url))
                assert all(app.client.get(f"/api/v1/jobs/{j}").status_code == 200 for j in accepted)
        finally:
            procs.stop_all()
            redis_proc.terminate()
    totals = outcome.total()
    record(
        "fuzz",
        {
            "command": f"python -m bench.fuzz --examples {args.examples} --seed {seed}",
            "requests": sum(totals.values()),
            "seconds": round(elapsed, 1),
            "by_status": {str(k): v for k, v in sorted(totals.items())},
            "by_kind": {kind: {str(k): v for k, v in sorted(c.items())} for kind, c in outcome.counts.items()},
            "server_errors": sum(v for k, v in totals.items() if k >= 500),
            "accepted_jobs": {status: ends.count(status) for status in sorted(set(ends))},
            "restarts_clean": 2,
        },
    )


if __name__ == "__main__":
    main()
