"""`python worker.py --backends NAME[,NAME]`: an RQ worker that keeps its backends loaded.

It serves the queues `dailies:<backend>` of the named backends (`usable`: every backend this
machine can run) against `REDIS_URL`. One process, no fork per job, so models stay resident
between jobs; a heartbeat thread keeps RQ from declaring a long job abandoned.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from redis import Redis
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

import backends
from backends.hosted_common import PolledBackend
from backends.local_model import LocalModelBackend
from dailies.contract import job_record, keys
from dailies.contract.settings import Settings, model_env_name
from dailies.worker.polling import Dispatcher


class DailiesWorker(SimpleWorker):
    """SimpleWorker plus a heartbeat while a job runs in the main thread: RQ's (so the job is
    not declared abandoned) and ours in the job hash (so the app sees a dead worker quickly)."""

    beat_s: float = 5.0

    def execute_job(self, job: Job, queue: Queue) -> None:
        done = threading.Event()
        execution = self.prepare_execution(job)

        def beat() -> None:
            while not done.wait(self.beat_s):
                self.maintain_heartbeats(job, execution)
                # A hosted job's poll step beats for the job it polls.
                job_record.beat(self.connection, job.meta.get("job", job.id))

        thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
        thread.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            thread.join()
        self.set_state(WorkerStatus.IDLE)


def parse_backends(value: str, settings: Settings) -> list[str]:
    if value == "usable":
        return backends.usable_names(settings)
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in backends.BACKEND_CLASSES]
    if unknown:
        raise SystemExit(f"unknown backend(s): {', '.join(unknown)}; known: {', '.join(backends.BACKEND_CLASSES)}")
    return names


def check_model_settings(settings: Settings) -> None:
    """A DAILIES_MODEL_* that names no local model's weights is a typo: stop before serving jobs."""
    known = {
        model_env_name(b.name, mode)
        for b in backends.all_backends(settings)
        if isinstance(b, LocalModelBackend)
        for mode in b.modes
    }
    for name, _ in settings.model_overrides:
        if name not in known:
            raise SystemExit(f"{name} names no local model's weights; known: {', '.join(sorted(known))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="usable", help="comma-separated backend names, or 'usable'")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", default=None, help="worker name shown in /api/v1/healthz")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if not settings.redis_url:
        raise SystemExit("REDIS_URL is not set: point the worker at the app's Redis")
    check_model_settings(settings)
    names = parse_backends(args.backends, settings)
    for name in names:
        availability = backends.get(name, settings).availability()
        if not availability.usable:
            raise SystemExit(f"backend {name} is not usable here: {availability.reason}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per provider request is noise
    redis = Redis.from_url(settings.redis_url)
    # A restart is how a fixed key takes effect; hosted jobs' polls are moved by this process.
    redis.delete(*[keys.misconfigured(n) for n in names])
    polled = [n for n in names if isinstance(backends.get(n, settings), PolledBackend)]
    if polled:
        Dispatcher(redis, polled, settings.job_timeout).start()
    worker = DailiesWorker(
        [keys.queue_name(n) for n in names],
        connection=redis,
        name=args.name,
        log_job_description=False,  # job arguments hold prompts and images: keep them out of logs
    )
    worker.beat_s = settings.heartbeat_s
    worker.work(burst=args.burst, logging_level="INFO")
    return 0


if __name__ == "__main__":
    sys.exit(main())
