"""`python app.py` with REDIS_URL unset: its own redis-server and worker, which stop with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import AuthenticationError, ResponseError

from tests.conftest import ROOT, Processes, base_env, start_app, wait_for


def children_of(pid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found[int(entry.name)] = cmdline
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listening_ports(pid: int) -> set[int]:
    """TCP ports a process listens on (from /proc: its socket inodes in the LISTEN rows)."""
    inodes = set()
    for fd in (Path("/proc") / str(pid) / "fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for row in (Path("/proc/net") / table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_embedded_app_runs_jobs_and_stops_its_children(processes: Processes, tmp_path: Path) -> None:
    app = start_app(processes, tmp_path, None)
    kids = wait_for(lambda: (k := children_of(app.proc.proc.pid)) and len(k) >= 2 and k, what="children")
    assert any("redis-server" in c for c in kids.values()) and any("worker.py" in c for c in kids.values())
    # The Redis password never appears on a command line, and without it Redis answers nothing.
    assert all("requirepass" not in c for c in kids.values())
    redis_pid = next(pid for pid, c in kids.items() if "redis-server" in c)
    (port,) = wait_for(lambda: listening_ports(redis_pid), what="the Redis port")
    with pytest.raises(AuthenticationError):
        Redis(port=port).get("rq:queues")
    with pytest.raises((AuthenticationError, ResponseError)):
        Redis(port=port, password="guessed").ping()

    job = app.submit(prompt="embedded mode works", backend="preview", seed=3).json()
    assert app.wait_done(job["id"])["status"] == "succeeded"
    assert (app.data / "redis" / "appendonlydir").is_dir()
    assert any(app.data.glob("dataset/data/*/*/metadata.jsonl"))

    # A second app on the same data folder refuses instead of sharing it.
    second = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=base_env(DAILIES_DATA=str(app.data), GRADIO_SERVER_PORT="1"),
    )
    assert second.returncode != 0 and "already used by a running Dailies app" in second.stderr + second.stdout

    app.proc.stop(signal.SIGTERM)
    wait_for(lambda: not any(alive(pid) for pid in kids), 20, what="children to stop")

    # A restart on the same folder keeps the gallery.
    again = start_app(processes, tmp_path, None)
    listed = again.client.get("/api/v1/generations", params={"q": "embedded"}).json()["items"]
    assert [g["id"] for g in listed] == [job["id"]]


def test_children_stop_even_if_the_app_is_killed(processes: Processes, tmp_path: Path) -> None:
    app = start_app(processes, tmp_path, None)
    kids = wait_for(lambda: (k := children_of(app.proc.proc.pid)) and len(k) >= 2 and k, what="children")
    os.kill(app.proc.proc.pid, signal.SIGKILL)
    wait_for(lambda: not any(alive(pid) for pid in kids), 20, what="children to stop")


@pytest.mark.faults
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_whole_family_mid_job(processes: Processes, tmp_path: Path, sig: int) -> None:
    """The worker in the middle of a minute-long job, the app told to stop: it stops its worker and
    Redis itself (the README's promise), and nothing of it is left 10 s later."""
    app = start_app(processes, tmp_path, None, DAILIES_PREVIEW_PACE="60")
    kids = wait_for(lambda: (k := children_of(app.proc.proc.pid)) and len(k) >= 2 and k, what="children")
    job = app.submit(prompt="a long take", backend="preview", num_frames=8).json()
    wait_for(lambda: app.client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "running", what="the job to run")
    os.kill(app.proc.proc.pid, sig)
    wait_for(lambda: not any(alive(pid) for pid in [app.proc.proc.pid, *kids]), 10, what="the app and its children")
    assert app.proc.proc.wait() == 0  # it stopped itself, cleanup included, not killed by the signal
    assert "stopping" in app.proc.output()
