"""`python app.py`, forked from a process that has imported it once (tests only).

Importing the app (Gradio above all) costs about five CPU seconds, and the suite starts the app
more than a hundred times on a two-core machine: most of its CPU. A forkserver that has imported
`app` forks each one instead; the child then runs exactly what `python app.py` runs, `app.main()`,
in its own environment, cwd and log. `Forked` answers what the tests ask of a `subprocess.Popen`.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["app"])


def _main(env: dict[str, str], log: str) -> None:
    """In the forked child: the log as stdout and stderr, the test's environment, then the app."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.environ.clear()
    os.environ.update(env)
    # huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and its cache folders when first imported
    # (in the forkserver): read them again from this app's environment.
    import huggingface_hub.constants

    importlib.reload(huggingface_hub.constants)
    os.chdir(ROOT)
    sys.argv = ["app.py"]
    import app

    app.main()


class Forked:
    """A forked app, with the part of `subprocess.Popen` the tests use."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._process = _CONTEXT.Process(target=_main, args=(env, str(log)), daemon=False)
        self._process.start()
        self.pid = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def poll(self) -> int | None:
        return None if self._process.is_alive() else self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired("app.py", timeout or 0)
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()
