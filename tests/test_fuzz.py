"""Generated requests against the real app never get a 5xx, never queue a job from an invalid
body, and leave an app that restarts cleanly (see tests/fuzzing.py for what is generated); with
the limits at their defaults, every 429 says when to retry. CI runs a fixed seed with a bounded
count; `python -m bench.fuzz` is the longer run."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.conftest import App, Processes, start_app
from tests.fuzzing import Fuzzer, app_env
from tests.hosted_servers import HostedServer, worker_env
from tests.hub_server import HubServer

pytestmark = pytest.mark.fuzz
EXAMPLES = 80  # per kind of request, seven kinds (the page's /submit a third of it): about 500 requests
# Two backends a worker serves, so that comparisons are accepted too: preview and the OpenAI
# contract against the loopback stand-in (tests/hosted_servers.py).
SERVED = "preview,openai-videos"


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.fixture
def hosted() -> Iterator[HostedServer]:
    with HostedServer() as server:
        yield server


def fuzz_app(processes: Processes, tmp_path: Path, redis_url: str, hub: HubServer) -> App:
    return start_app(processes, tmp_path, redis_url, **app_env(hub.url))


def test_generated_requests_never_break_the_app(
    processes: Processes, tmp_path: Path, redis_url: str, hub: HubServer, hosted: HostedServer
) -> None:
    worker = processes.worker(redis_url, backends=SERVED, **worker_env(hosted))
    app = fuzz_app(processes, tmp_path, redis_url, hub)
    fuzzer = Fuzzer(app.url, redis_url, EXAMPLES)
    outcome = fuzzer.run()
    print("\nstatus codes by kind:", {k: dict(sorted(v.items())) for k, v in outcome.counts.items()})
    totals = outcome.total()
    assert totals[202] and totals[415] and totals[422] and totals[400] and totals[404]
    # Each new kind reached what it is for: comparisons accepted and refused, the page's routes answered.
    assert outcome.counts["comparison"][202] and outcome.counts["comparison"][422] and fuzzer.known_groups
    assert outcome.counts["gradio api"][200] and outcome.counts["page submit"][200]
    # Ids the app handed out reached the real thing (a job's status or events, a comparison's record, a cancel).
    known = {kind: counts for kind, counts in outcome.counts.items() if kind.startswith("known ")}
    assert sum(c[200] + c[202] + c[409] for c in known.values()), known

    # Whatever was accepted runs to an end, and the app restarts cleanly on the same data, twice.
    accepted = [k.decode().rsplit(":", 1)[1] for k in Redis.from_url(redis_url).scan_iter("dailies:job:*")]
    for job_id in accepted:
        assert app.wait_done(job_id, timeout=300)["status"] in ("succeeded", "failed")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        app.proc.stop(sig)
        app = fuzz_app(processes, tmp_path, redis_url, hub)
        assert app.client.get("/api/v1/healthz").json()["collector"]["running"]
        for job_id in accepted:
            assert app.client.get(f"/api/v1/jobs/{job_id}").status_code == 200
        assert app.client.get("/api/v1/generations", params={"limit": 100}).status_code == 200
    assert worker.proc.poll() is None


def test_generated_requests_at_the_default_limits(
    processes: Processes, tmp_path: Path, redis_url: str, hub: HubServer, hosted: HostedServer
) -> None:
    """The limits as shipped (3 active jobs, 30 an hour for a visitor): the 429s come, each with a Retry-After."""
    processes.worker(redis_url, backends=SERVED, DAILIES_PREVIEW_PACE="0.5", **worker_env(hosted))
    app = start_app(processes, tmp_path, redis_url, HF_ENDPOINT=hub.url)
    fuzzer = Fuzzer(app.url, redis_url, 40)
    json_bodies, _, comparisons, *_ = fuzzer.properties()
    outcome = fuzzer.run([json_bodies, comparisons])
    print("\nstatus codes by kind:", {k: dict(sorted(v.items())) for k, v in outcome.counts.items()})
    assert outcome.total()[429] and outcome.total()[202]
