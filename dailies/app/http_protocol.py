"""uvicorn's h11 protocol with a deadline for a request's line and headers.

uvicorn has none: a client sending its headers a byte at a time (slowloris) holds a connection,
and its buffers, for as long as it likes. Here it gets `headers_s` from the connection's start, or
from the end of its previous response, then the connection is closed. A request whose headers are
in is never cut: its body and its answer (an event stream too) take what they take.
"""

from __future__ import annotations

import asyncio

import h11
import uvicorn.config
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadline(H11Protocol):
    headers_s: float = 20.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.headers_s, self._late)

    def _late(self) -> None:
        # IDLE: no complete request line and headers since the deadline was set.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def install(headers_s: float) -> None:
    """Every uvicorn server of this process speaks HeaderDeadline: `uvicorn.run` in app.py, and the
    one Gradio's own launch builds on ZeroGPU, whose Config names no protocol ("auto", looked up
    in this table when it starts)."""
    HeaderDeadline.headers_s = headers_s
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:HeaderDeadline"
