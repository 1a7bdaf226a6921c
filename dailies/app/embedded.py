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


STOP_GRACE_S = 3.0  # the app's whole family is gone within seconds of SIGTERM


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
        """Newest first (the worker before its Redis), each given STOP_GRACE_S: a worker in the middle
        of a job would finish it first; killed, its job is handed on by the reaper at the next start."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()


class EmbeddedRedis:
    """The app's own redis-server: one port, password and folder for its whole life, so a restart
    (after it died) comes back on its append-only file where the app and the worker expect it."""

    def __init__(self, data_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit(
                "redis-server is not installed: run the README's setup command "
                "(apt-get install redis-server), or set REDIS_URL to a Redis you run"
            )
        self.binary = binary
        self.folder = data_dir / "redis"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port, self._password = _free_port(), secrets.token_urlsafe(24)

    @property
    def url(self) -> str:
        return f"redis://:{self._password}@127.0.0.1:{self.port}/0"

    def start(self, children: Children) -> subprocess.Popen:
        """Start redis-server and wait until it answers (it first replays its append-only file)."""
        # The password goes through stdin (a config file on "-"), never the command line.
        proc = subprocess.Popen(
            [self.binary, "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            cwd=self.folder,
        )
        config = (
            f"bind 127.0.0.1\nport {self.port}\nrequirepass {self._password}\ndir {self.folder}\n"
            'appendonly yes\nappendfsync everysec\nsave ""\nprotected-mode yes\n'
            "loglevel warning\n"
        )
        proc.stdin.write(config.encode())
        proc.stdin.close()
        children.procs.append(proc)
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.ping()
                return proc
            except RedisConnectionError:  # also while it loads its append-only file
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"redis-server did not start (exit code {proc.poll()})") from None
                time.sleep(0.05)
            finally:
                client.close()


def start_worker(children: Children, redis_url: str, backend_names: list[str], name: str) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis_url}
    return children.spawn(
        [sys.executable, str(ROOT / "worker.py"), "--backends", ",".join(backend_names), "--name", name], env=env
    )
