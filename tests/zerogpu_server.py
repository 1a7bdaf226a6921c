"""A loopback server that speaks the ZeroGPU scheduler's endpoints, as the `spaces` client calls them.

`spaces` (0.51.3, `spaces/zero/api.py`) talks to `SPACES_ZERO_DEVICE_API_URL` with query
parameters only:

- `POST /startup-report`: 200 once the app has launched (404: not ready yet, it retries).
- `POST /schedule?cgroupPath&taskId&enableQueue&tokenVersion&durationSeconds&gpuSize&token`
  (`token`: the visitor's `X-IP-Token`): 200 `{idle, nvidiaIndex, nvidiaUUID, allowToken}`, or
  429 `{left, wait}` over quota (with `X-Authenticated: regular` or `pro`), or an event stream
  while it queues (not served here).
- `POST /allow?allowToken&pid`: the forked GPU process may use the GPU; 200.
- `POST /release?allowToken&fail`: the GPU is given back; 200 (204: it was never used).

Every call is recorded so a test can see which visitor's token asked for how long, which
process was allowed on the GPU and when the GPU was given back. A token whose payload names a
user in `over_quota` gets the platform's 429.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def visitor_token(user: str) -> str:
    """An `X-IP-Token` shaped like the platform's (a JWT; `spaces` reads its payload, not its signature)."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'EdDSA'})}.{part({'user': user})}.c2lnbmF0dXJl"


def _user(token: str) -> str | None:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "==")).get("user")


@dataclass
class Call:
    path: str
    params: dict[str, str]


@dataclass
class Scheduler:
    over_quota: set[str] = field(default_factory=set)  # users the scheduler refuses
    url: str = ""  # set by `serve`
    quota_left_s: int = 12
    calls: list[Call] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)  # allow tokens of the GPU tasks it let run
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [c.params for c in self.calls if c.path == path]

    def all_released(self) -> bool:
        """Every GPU task it let run has given its GPU back."""
        return set(self.granted) <= {p["allowToken"] for p in self.seen("/release")}

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict, dict | None]:
        with self.lock:
            self.calls.append(Call(path, params))
        if path == "/schedule":
            token = params.get("token")
            if token and _user(token) in self.over_quota:
                # The refusal shape spaces turns into "You have exceeded your ... quota".
                return 429, {"X-Authenticated": "regular"}, {"left": self.quota_left_s, "wait": 3600}
            grant = {"idle": True, "nvidiaIndex": 0, "nvidiaUUID": "GPU-loopback", "allowToken": uuid.uuid4().hex}
            with self.lock:
                self.granted.append(grant["allowToken"])
            return 200, {"X-Authenticated": "regular"} if token else {}, grant
        if path in ("/startup-report", "/allow", "/release"):
            return 200, {}, None
        if path == "/queue-size":
            return 200, {}, 0
        return 404, {}, {"detail": "not found"}


def serve(scheduler: Scheduler) -> tuple[ThreadingHTTPServer, str]:
    """Start the scheduler on a free loopback port; returns the server and its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            status, headers, body = scheduler.answer(url.path, params)
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheduler.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server, scheduler.url
