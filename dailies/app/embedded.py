"""Embedded mode: the app's own redis-server and worker, as children that stop with it.

Used when `REDIS_URL` is unset (a fresh machine, or a Space). Redis keeps its files under
`<data>/redis` with the append-only file on, listens on loopback only and wants a password
that only the app and its worker know.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

ROOT = Path(__file__).resolve().parents[2]


def lock_data_folder(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on the data folder for the life of the process."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / "app.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        raise SystemExit(
            f"The data folder {data_dir} is already used by a running Dailies app ({holder}). "
            "Stop that app, or set DAILIES_DATA to another folder."
        ) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM when the app dies, even by SIGKILL.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Children:
    """The processes the app started, stopped in reverse order at exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        atexit.register(self.stop)

    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(args, env=env, preexec_fn=_die_with_parent, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.procs.clear()


def start_redis(children: Children, data_dir: Path) -> str:
    """Start redis-server on loopback with its files under data_dir/redis; returns its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "redis-server is not installed: run the README's setup command "
            "(apt-get install redis-server), or set REDIS_URL to a Redis you run"
        )
    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    port, password = _free_port(), secrets.token_urlsafe(24)
    # The password goes through stdin (a config file on "-"), never the command line.
    proc = subprocess.Popen(
        [binary, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        cwd=folder,
    )
    config = (
        f"bind 127.0.0.1\nport {port}\nrequirepass {password}\ndir {folder}\n"
        'appendonly yes\nappendfsync everysec\nsave ""\nprotected-mode yes\n'
        "loglevel warning\n"
    )
    proc.stdin.write(config.encode())
    proc.stdin.close()
    children.procs.append(proc)
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    client = Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            return url
        except RedisConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start (exit code {proc.poll()})") from None
            time.sleep(0.05)
        finally:
            client.close()


def start_worker(children: Children, redis_url: str, backend_names: list[str]) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis_url}
    return children.spawn(
        [
            sys.executable,
            str(ROOT / "worker.py"),
            "--backends",
            ",".join(backend_names),
            "--name",
            f"embedded-{os.getpid()}",
        ],
        env=env,
    )
