"""Safe in public: what a hostile visitor or a failing neighbour cannot do to everyone else."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import App, Processes, start_app, wait_for


class SilentHub:
    """A Hub that accepts every connection and never answers (as one under an outage may)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.closed_by_peer = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)

    def still_open(self) -> int:
        """Connections the app still holds open (a closed one reads as end of file)."""
        open_now = 0
        for conn in self.held:
            conn.setblocking(False)
            try:
                open_now += conn.recv(1 << 16, socket.MSG_PEEK) != b""
            except BlockingIOError:
                open_now += 1
            except OSError:
                pass
        return open_now

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent_hub() -> Iterator[SilentHub]:
    hub = SilentHub()
    yield hub
    hub.close()


def test_a_silent_hub_holds_only_the_callers_with_unknown_tokens(
    processes: Processes, tmp_path: Path, redis_url: str, silent_hub: SilentHub
) -> None:
    processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url, HF_ENDPOINT=silent_hub.url)
    job = app.submit(prompt="someone else's job", backend="preview", num_frames=2).json()["id"]

    def with_random_token(i: int) -> int:
        headers = {"Authorization": f"Bearer hf_{secrets.token_hex(16)}"}
        body = {"prompt": "a boat", "backend": "preview"}
        return httpx.post(f"{app.url}/api/v1/jobs", json=body, headers=headers, timeout=120).status_code

    with ThreadPoolExecutor(50) as pool:
        answers = [pool.submit(with_random_token, i) for i in range(50)]
        # The app is asking the silent Hub about several tokens at once, and has none of its answers.
        wait_for(lambda: silent_hub.still_open() >= 4, 30, what="whoami calls held by the silent Hub")
        held_before = silent_hub.still_open()
        # Meanwhile another visitor's calls are answered as usual.
        assert app.client.get("/api/v1/healthz").status_code == 200
        assert app.client.get(f"/api/v1/jobs/{job}").json()["id"] == job
        assert app.client.get("/").status_code == 200
        # ...and every whoami call the app made is still held: they were answered while the Hub hung.
        assert silent_hub.still_open() >= held_before
        codes = [a.result() for a in answers]
    # Every caller with a made-up token got a clear answer, none of them a job.
    assert set(codes) <= {503, 429}, codes
    assert 503 in codes


def test_headers_sent_a_byte_at_a_time_lose_their_connection(processes: Processes, tmp_path: Path) -> None:
    """A slowloris client trickling header lines is cut off once the header deadline passes, while
    the app goes on answering everyone else."""
    app = start_app(processes, tmp_path, None, DAILIES_HEADER_TIMEOUT_S="1")
    assert_slow_headers_are_cut(app)


def assert_slow_headers_are_cut(app: App) -> None:
    """A header line every 0.2 s, never the blank line that ends them: the app closes the connection
    (a minute at most), and answers another client between every two lines meanwhile."""
    slow = socket.create_connection(("127.0.0.1", int(app.url.rsplit(":", 1)[1])))
    slow.settimeout(0.2)
    slow.sendall(b"GET /api/v1/healthz HTTP/1.1\r\nHost: dailies\r\n")
    closed = False
    for i in range(300):
        try:
            slow.sendall(f"X-Pad-{i}: a\r\n".encode())
            closed = slow.recv(1024) == b""
        except TimeoutError:
            pass
        except OSError:
            closed = True
        if closed:
            break
        assert app.client.get("/api/v1/healthz").status_code == 200
    slow.close()
    assert closed, "the app kept a connection whose headers never ended"
