"""One background thread that repeats a step: the app's collector, publisher and index sync and
the worker's hosted dispatcher all start, wake and stop theirs the same way."""

from __future__ import annotations

import threading
from collections.abc import Callable

# A step answers the seconds until it runs again: 0 at once, None when woken (or stopped).
Step = Callable[[], float | None]


class BackgroundLoop:
    def __init__(self, name: str, step: Step, stop_timeout: float = 5.0) -> None:
        self.name, self.step, self.stop_timeout = name, step, stop_timeout
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

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

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            wait = self.step()
            if wait is None or wait > 0:
                self._wake.wait(wait)
