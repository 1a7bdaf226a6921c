"""One loopback HTTP server speaking four hosted contracts, with scripted failures.

Routes (all under http://127.0.0.1:<port>):
- `/openai/v1/videos...`: the OpenAI Videos API (multipart create, get, content, delete).
- `/fal/<owner>/<app>...`: fal's queue API (submit, status with queue_position and logs, result, cancel).
- `/replicate/v1/...`: Replicate's predictions API (create, get, cancel).
- `/hub/api/models/<id>` (HF_ENDPOINT) and `/hfrouter/fal-ai/...`: what InferenceClient reaches when
  its https hosts are routed here (tests/hf_route/sitecustomize.py): the Hub's provider mapping
  and the router in front of fal's queue.
- `/files/<name>`: the finished videos (a real small H.264 MP4), or broken ones on demand.

The test process runs it in a thread and changes `script` between jobs; `calls` records what
arrived, including every Authorization header.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from dailies.contract.media import Audio, encode_mp4

KEYS = {
    "openai": "sk-test-openai-9f8e7d6c5b4a",
    "fal": "fal-test-key-1a2b3c4d5e6f",
    "replicate": "r8_test_replicate_0a1b2c3d",
    "hf": "hf_test_token_abcdefghijkl",
}


def small_mp4(sound: bool = False) -> bytes:
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, size=(1, 64, 96, 3), dtype=np.uint8), 8, axis=0)
    frames[:, :, :16] = np.arange(8, dtype=np.uint8)[:, None, None, None] * 30  # something moves
    # A provider that makes sound: one second of a 330 Hz tone in stereo at 48 kHz.
    tone = 0.3 * np.sin(2 * np.pi * 330 * np.arange(48_000) / 48_000)
    return encode_mp4(frames, 8, Audio(np.stack([tone, tone]), 48_000) if sound else None)


@dataclass
class Script:
    """How the next remote jobs behave."""

    polls: int = 2  # answers of "not yet" before done
    create_errors: list[int] = field(default_factory=list)  # statuses answered to creates first
    poll_errors: list[int] = field(default_factory=list)  # statuses answered to status polls first
    retry_after: str | None = "1"
    outcome: str = "ok"  # ok | failed | policy | stuck
    video: str = "ok"  # ok | sound | truncated | oversized | garbage
    queue_position: int = 3


@dataclass
class Remote:
    provider: str
    app: str
    polls: int = 0
    canceled: bool = False
    deleted: bool = False


class HostedServer:
    def __init__(self) -> None:
        self.script = Script()
        self.calls: list[tuple[str, str]] = []
        self.auth: list[str] = []
        self.bodies: list[Any] = []
        self.remotes: dict[str, Remote] = {}
        self.lock = threading.Lock()
        self.mp4 = small_mp4()
        self.mp4_with_sound = small_mp4(sound=True)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self)

            do_POST = do_PUT = do_DELETE = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HostedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self) -> None:
        """Forget the calls and remote jobs of earlier tests and go back to the default script."""
        with self.lock:
            self.script = Script()
            self.calls.clear()
            self.auth.clear()
            self.bodies.clear()
            self.remotes.clear()

    # What the tests look at.
    def count(self, method: str, pattern: str) -> int:
        with self.lock:
            return sum(1 for m, p in self.calls if m == method and re.search(pattern, p))

    def active(self) -> int:
        """Remote jobs created and neither finished nor canceled."""
        with self.lock:
            return sum(1 for r in self.remotes.values() if r.polls <= self.script.polls and not r.canceled)

    # The contracts.
    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        with self.lock:
            self.calls.append((h.command, parts.path))
            if h.headers.get("authorization"):
                self.auth.append(h.headers["authorization"])
        path, query = parts.path, parse_qs(parts.query)
        if path.startswith("/files/"):
            return self.file(h, path.rsplit("/", 1)[1])
        if path.startswith("/hub/api/models/"):
            model = path.removeprefix("/hub/api/models/")
            mapping = {"fal-ai": {"status": "live", "providerId": "fal-ai/ltx-video", "task": "text-to-video"}}
            return self.json(h, 200, {"_id": "0", "id": model, "modelId": model, "inferenceProviderMapping": mapping})
        routes = [
            ("/openai/v1/videos", "openai", "Bearer " + KEYS["openai"]),
            ("/fal/", "fal", "Key " + KEYS["fal"]),
            ("/hfrouter/fal-ai/", "fal", "Bearer " + KEYS["hf"]),
            ("/replicate/v1/", "replicate", "Bearer " + KEYS["replicate"]),
        ]
        for prefix, provider, auth in routes:
            if path.startswith(prefix):
                if h.headers.get("authorization") != auth:
                    return self.json(h, 401, {"error": {"message": "Incorrect API key provided"}})
                rest = path.removeprefix(prefix).strip("/")
                return getattr(self, provider)(h, h.command, rest, raw, query)
        self.json(h, 404, {"error": "no such route"})

    def _create(self, provider: str, app: str, body: Any) -> tuple[int, str | None]:
        """(error status, None) for a scripted failure, else (0, new remote id)."""
        with self.lock:
            self.bodies.append(body)
            if self.script.create_errors:
                return self.script.create_errors.pop(0), None
            remote_id = uuid.uuid4().hex[:16]
            self.remotes[remote_id] = Remote(provider, app)
            return 0, remote_id

    def _poll(self, remote_id: str) -> tuple[int, Remote | None, str]:
        """(error status, remote, state): state is queued, running, done, failed or policy."""
        with self.lock:
            remote = self.remotes.get(remote_id)
            if remote is None:
                return 404, None, ""
            if self.script.poll_errors:
                return self.script.poll_errors.pop(0), remote, ""
            remote.polls += 1
            if remote.canceled:
                return 0, remote, "canceled"
            if self.script.outcome == "stuck":
                return 0, remote, "queued"
            if remote.polls <= self.script.polls:
                return 0, remote, "queued" if remote.polls == 1 else "running"
            return 0, remote, {"ok": "done"}.get(self.script.outcome, self.script.outcome)

    def _error(self, h: BaseHTTPRequestHandler, status: int) -> None:
        headers = {"Retry-After": self.script.retry_after} if self.script.retry_after and status in (429, 503) else {}
        self.json(h, status, {"error": {"message": f"scripted HTTP {status}"}}, headers)

    def video_url(self, remote_id: str) -> str:
        return f"{self.url}/files/{remote_id}.mp4"

    def openai(self, h: BaseHTTPRequestHandler, method: str, rest: str, raw: bytes, query: dict) -> None:
        if method == "POST" and rest == "":
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {h.headers['content-type']}\r\n\r\n".encode() + raw
            )
            form = {
                part.get_param("name", header="content-disposition"): part.get_content()
                for part in message.iter_parts()
            }
            status, remote_id = self._create("openai", str(form.get("model")), form)
            if status:
                return self._error(h, status)
            return self.json(h, 200, {"id": remote_id, "object": "video", "status": "queued", "progress": 0})
        remote_id, _, tail = rest.partition("/")
        if method == "DELETE":
            with self.lock:
                remote = self.remotes.get(remote_id)
                if remote:
                    remote.canceled = remote.deleted = True
            return self.json(h, 200 if remote else 404, {"id": remote_id, "deleted": bool(remote)})
        if tail == "content":
            return self.file(h, remote_id + ".mp4")
        status, remote, state = self._poll(remote_id)
        if status:
            return self._error(h, status)
        body: dict[str, Any] = {"id": remote_id, "object": "video", "model": remote.app}
        if state in ("queued", "running"):
            body.update(
                status="queued" if state == "queued" else "in_progress", progress=40 if state == "running" else 0
            )
        elif state == "done":
            body.update(status="completed", progress=100)
        else:
            message = "Your request was blocked by our moderation system." if state == "policy" else "the model crashed"
            body.update(
                status="failed",
                error={"code": "moderation_blocked" if state == "policy" else "internal", "message": message},
            )
        self.json(h, 200, body, {"openai-poll-after-ms": "300"})

    def fal(self, h: BaseHTTPRequestHandler, method: str, rest: str, raw: bytes, query: dict) -> None:
        if "/requests/" not in rest and method == "POST":
            status, remote_id = self._create("fal", rest, json.loads(raw or b"{}"))
            if status:
                return self._error(h, status)
            base = f"https://queue.fal.run/{'/'.join(rest.split('/')[:2])}/requests/{remote_id}"
            return self.json(
                h,
                200,
                {
                    "request_id": remote_id,
                    "status": "IN_QUEUE",
                    "response_url": base,
                    "status_url": base + "/status",
                    "cancel_url": base + "/cancel",
                },
            )
        match = re.fullmatch(r"[^/]+/[^/]+/requests/([^/]+)(/status|/cancel)?", rest)
        if not match:
            return self.json(h, 404, {"detail": "not found"})
        remote_id, tail = match.groups()
        if tail == "/cancel":
            with self.lock:
                remote = self.remotes.get(remote_id)
                if remote:
                    remote.canceled = True
            return self.json(h, 202 if remote else 404, {"status": "CANCELLATION_REQUESTED"})
        if tail == "/status":
            status, remote, state = self._poll(remote_id)
            if status:
                return self._error(h, status)
            if state == "queued":
                return self.json(h, 200, {"status": "IN_QUEUE", "queue_position": self.script.queue_position})
            if state == "running":
                logs = [{"message": "loading"}, {"message": " 50%|#####     | 4/8 [00:01<00:01]"}]
                return self.json(h, 200, {"status": "IN_PROGRESS", "logs": logs})
            return self.json(h, 200, {"status": "COMPLETED", "logs": []})
        with self.lock:
            remote = self.remotes.get(remote_id)
        if remote is None:
            return self.json(h, 404, {"detail": "not found"})
        if self.script.outcome == "policy":
            detail = [
                {
                    "loc": ["body", "prompt"],
                    "type": "content_policy_violation",
                    "msg": "The content could not be processed because it contained material flagged by a "
                    "content checker.",
                }
            ]
            return self.json(h, 422, {"detail": detail})
        self.json(h, 200, {"video": {"url": self.video_url(remote_id), "content_type": "video/mp4"}, "seed": 1})

    def replicate(self, h: BaseHTTPRequestHandler, method: str, rest: str, raw: bytes, query: dict) -> None:
        created = re.fullmatch(r"models/([^/]+/[^/]+)/predictions", rest)
        if created and method == "POST":
            status, remote_id = self._create("replicate", created.group(1), json.loads(raw or b"{}"))
            if status:
                return self._error(h, status)
            return self.json(h, 201, {"id": remote_id, "status": "starting", "urls": {}})
        match = re.fullmatch(r"predictions/([^/]+)(/cancel)?", rest)
        if not match:
            return self.json(h, 404, {"detail": "not found"})
        remote_id, cancel = match.groups()
        if cancel:
            with self.lock:
                remote = self.remotes.get(remote_id)
                if remote:
                    remote.canceled = True
            return self.json(h, 200 if remote else 404, {"id": remote_id, "status": "canceled"})
        status, remote, state = self._poll(remote_id)
        if status:
            return self._error(h, status)
        body: dict[str, Any] = {"id": remote_id, "model": remote.app, "logs": "", "error": None, "output": None}
        if state == "queued":
            body["status"] = "starting"
        elif state == "running":
            body.update(status="processing", logs="Loading pipeline\n 62%|######2   | 31/50 [00:10<00:06]\n")
        elif state == "done":
            body.update(status="succeeded", output=self.video_url(remote_id))
        elif state == "canceled":
            body["status"] = "canceled"
        else:
            body.update(
                status="failed",
                error="NSFW content detected. Try a different prompt." if state == "policy" else "CUDA out of memory",
            )
        self.json(h, 200, body)

    def file(self, h: BaseHTTPRequestHandler, name: str) -> None:
        kind = self.script.video
        if kind == "truncated":  # promises the whole file, sends half, hangs up
            h.send_response(200)
            h.send_header("Content-Type", "video/mp4")
            h.send_header("Content-Length", str(len(self.mp4)))
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(self.mp4[: len(self.mp4) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        body = {
            "ok": self.mp4,
            "sound": self.mp4_with_sound,
            "garbage": b"<html>not a video</html>" * 40,
            "oversized": self.mp4 + bytes(2 * 1024 * 1024),
        }[kind]
        self.send(h, 200, body, "video/mp4")

    def json(self, h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.send(h, status, json.dumps(body).encode(), "application/json", headers)

    def send(
        self, h: BaseHTTPRequestHandler, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)


def worker_env(server: HostedServer, **extra: str) -> dict[str, str]:
    """What a hosted worker needs to talk to this server (keys, base URLs, loopback allowed)."""
    return {
        "OPENAI_VIDEOS_API_KEY": KEYS["openai"],
        "OPENAI_VIDEOS_BASE_URL": f"{server.url}/openai/v1",
        "FAL_KEY": KEYS["fal"],
        "FAL_QUEUE_URL": f"{server.url}/fal",
        "REPLICATE_API_TOKEN": KEYS["replicate"],
        "REPLICATE_API_URL": f"{server.url}/replicate/v1",
        "HF_TOKEN": KEYS["hf"],
        "HF_ENDPOINT": f"{server.url}/hub",
        "DAILIES_TEST_HF_ROUTE": f"{server.url}/hfrouter",
        "DAILIES_HOSTED_ALLOW_PRIVATE": "1",
        **extra,
    }
