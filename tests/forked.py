"""`python app.py` and `python worker.py`, forked from a process that has imported them once (tests only).

Importing the app (Gradio above all) costs about five CPU seconds, a worker over one, and the
suite starts more than a hundred of each on a two-core machine: most of its CPU. A forkserver that
has imported both forks each one instead; the child then runs exactly what `python app.py` or
`python worker.py ...` runs, the module's `main()` with its arguments, in its own environment, cwd
and log. `Forked` answers what the tests ask of a `subprocess.Popen`.
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
_CONTEXT.set_forkserver_preload(["app", "worker"])
ENTRIES = {"app.py": "app", "worker.py": "worker"}


def _main(argv: list[str], env: dict[str, str], log: str) -> None:
    """In the forked child: the log as stdout and stderr, the test's environment, then the entry point."""
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
    import huggingface_hub.hf_api

    importlib.reload(huggingface_hub.constants)
    huggingface_hub.hf_api.api.endpoint = huggingface_hub.constants.ENDPOINT  # its module-level client
    os.chdir(ROOT)
    sys.argv = argv
    sys.exit(importlib.import_module(ENTRIES[argv[0]]).main())


class Forked:
    """A forked app or worker, with the part of `subprocess.Popen` the tests use."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self._process = _CONTEXT.Process(target=_main, args=(argv, env, str(log)), daemon=False)
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
            raise subprocess.TimeoutExpired("forked", timeout or 0)
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()
