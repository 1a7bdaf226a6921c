"""Starting the real parts (redis-server, workers, the app) as processes, for tests and benchmarks."""

from __future__ import annotations

import base64
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent


def shared_data(name: str) -> Path | None:
    """A file of the team's shared data folder (`shared/data/` beside the checkout, or beside a
    folder above it), or None where this machine has none."""
    return next((p for p in (parent / "shared" / "data" / name for parent in ROOT.parents) if p.is_file()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll `check` until it returns something truthy (tests only: the product never polls like this)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAILIES_", "REDIS_URL", "HF_"))}
    env.update(GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", HF_HUB_DISABLE_TELEMETRY="1")
    env.update(extra)
    return env


def start_redis_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """A throwaway redis-server on a free loopback port (no persistence). Under pytest-xdist
    several sessions pick ports at once: the server is only taken once it answers as this
    process (a port another session's server won first is tried again)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    for _ in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", str(folder)],
            stdout=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        wait_for(lambda: proc.poll() is not None or _pings(url, proc.pid), what="redis-server")  # noqa: B023
        if proc.poll() is None:
            return proc, url
    raise RuntimeError("redis-server did not start on a free port in 5 tries")


def _pings(url: str, pid: int | None = None) -> bool:
    """`url` answers (as the redis-server of `pid`, when given)."""
    try:
        redis = Redis.from_url(url)
        return redis.ping() and (pid is None or redis.info("server")["process_id"] == pid)
    except Exception:
        return False


@dataclass
class Proc:
    proc: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def paused(worker: Proc) -> Iterator[None]:
    """The worker stopped (SIGSTOP) meanwhile: accepted jobs stay queued, counting against their visitor."""
    worker.proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        worker.proc.send_signal(signal.SIGCONT)


class Processes:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[Proc] = []

    def start(self, args: list[str], env: dict[str, str], name: str) -> Proc:
        """`python <args>`: app.py and worker.py forked from a process that imported them already
        (tests/forked.py), unless the command line or PYTHONPATH asks for an interpreter of its own."""
        from tests.forked import ENTRIES, Forked

        log = self.tmp_path / f"{name}-{len(self.started)}.log"
        if args[0] in ENTRIES and env.get("PYTHONPATH") == os.environ.get("PYTHONPATH"):
            proc = Proc(Forked(args, env, log), log)  # type: ignore[arg-type]
        else:
            handle = open(log, "wb")
            popen = subprocess.Popen(
                [sys.executable, *args], env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT
            )
            proc = Proc(popen, log)
        self.started.append(proc)
        return proc

    def worker(self, redis_url: str, backends: str = "preview", **env: str) -> Proc:
        """A real worker process, returned once it has registered with RQ."""
        name = f"test-worker-{len(self.started)}-{os.getpid()}"
        proc = self.start(
            ["worker.py", "--backends", backends, "--name", name], base_env(REDIS_URL=redis_url, **env), "worker"
        )
        redis = Redis.from_url(redis_url)
        wait_for(lambda: redis.exists(f"rq:worker:{name}") or proc.proc.poll() is not None, what="the worker")
        assert proc.proc.poll() is None, proc.output()
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


@dataclass
class App:
    url: str
    data: Path
    proc: Proc
    client: httpx.Client
    redis_url: str | None

    def submit(self, **body) -> httpx.Response:
        return self.client.post("/api/v1/jobs", json=body)

    def wait_done(self, job_id: str, timeout: float = 30.0) -> dict:
        def done():
            status = self.client.get(f"/api/v1/jobs/{job_id}").json()
            return status if status["status"] in ("succeeded", "failed", "canceled") else None

        return wait_for(done, timeout, interval=0.05, what=f"job {job_id} to finish")


def run_job(app: App, timeout: float = 300.0, **body) -> dict:
    """Submit a job and wait for it: its final status, which must be succeeded."""
    answer = app.submit(**body)
    assert answer.status_code == 202, answer.text
    status = app.wait_done(answer.json()["id"], timeout=timeout)
    assert status["status"] == "succeeded", status
    return status


def png(color: tuple[int, int, int]) -> str:
    """A small one-colour PNG as base64, a start image for image-to-video jobs."""
    buffer = io.BytesIO()
    Image.new("RGB", (96, 80), color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def start_app(
    processes: Processes, tmp_path: Path, redis_url: str | None, command: tuple[str, ...] = ("app.py",), **env: str
) -> App:
    data = tmp_path / "data"
    for _ in range(5):
        port = free_port()
        extra = {"DAILIES_DATA": str(data), "GRADIO_SERVER_PORT": str(port), **env}
        if redis_url:
            extra["REDIS_URL"] = redis_url
        proc = processes.start(list(command), base_env(**extra), "app")
        url = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=url, timeout=30)

        def up():
            if proc.proc.poll() is not None:  # noqa: B023
                return "exited"
            try:
                answer = client.get("/api/v1/healthz")  # noqa: B023
            except httpx.TransportError:
                return False
            return answer.status_code == 200 and "up"

        if wait_for(up, 60, what="the app") == "up":
            return App(url, data, proc, client, redis_url)
        # Another xdist session took the port between free_port() and the app's bind: try another.
        if "address already in use" not in proc.output().lower():
            raise AssertionError(f"app exited:\n{proc.output()}")
    raise AssertionError(f"app found no free port in 5 tries:\n{proc.output()}")
