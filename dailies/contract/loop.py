"""One background thread that repeats a step: the app's collector, publisher, index sync and
reaper and the worker's hosted dispatcher all start, wake and stop theirs the same way.

A loop never dies of an exception: a step that raises is logged, counted and tried again after a
growing pause (`backoff`), and `health()` shows the last error, so healthz can say which loop is
failing and why instead of a thread that silently stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from dailies.contract.retry import backoff

# A step answers the seconds until it runs again: 0 at once, None when woken (or stopped).
Step = Callable[[], float | None]
ERROR_BACKOFF_MAX_S = 30.0
log = logging.getLogger("dailies.loop")


class BackgroundLoop:
    def __init__(self, name: str, step: Step, stop_timeout: float = 5.0) -> None:
        self.name, self.step, self.stop_timeout = name, step, stop_timeout
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0  # steps that raised, since start
        self.failing = 0  # in a row, now: the pause before the next try grows with it
        self.last_error: str | None = None
        self.last_error_at: float | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run the step now instead of at its next time."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the step in progress (waiting for it at most `stop_timeout`)."""
        self._stopped.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=self.stop_timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "errors": self.errors,
            "failing": self.failing > 0,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            try:
                wait = self.step()
                self.failing = 0
            except Exception as exc:
                self.errors += 1
                self.failing += 1
                self.last_error, self.last_error_at = f"{type(exc).__name__}: {exc}"[:300], time.time()
                wait = backoff(self.failing, first_s=0.5, max_s=ERROR_BACKOFF_MAX_S)
                log.exception("%s: a step failed (%d in a row); trying again in %.1f s", self.name, self.failing, wait)
            if wait is None or wait > 0:
                self._wake.wait(wait)
