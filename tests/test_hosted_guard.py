"""The download guard for hosted videos, switched ON (every other hosted test allows private
addresses so that loopback servers can stand in for providers).

The real `download` against a loopback server that plays the operator's own gateway (the only
address allowed to be private), redirecting to where a hostile provider might point it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backends.base import GenerationError
from backends.hosted_common import MAX_REDIRECTS, download

pytestmark = [pytest.mark.hosted, pytest.mark.unit]
KEY = {"Authorization": "Bearer sk-operator-key"}


class Gateway:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []  # (path, authorization)
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                gateway.seen.append((self.path, self.headers.get("authorization")))
                port = self.server.server_address[1]
                targets = {
                    "/to-loopback": f"https://127.0.0.1:{port}/file",
                    "/to-link-local": "https://169.254.169.254/latest/meta-data/",
                    "/to-private": "https://10.1.2.3/file",
                    "/to-v6": f"https://[::1]:{port}/file",
                    "/to-http": "http://example.com/file",
                    "/same-origin": "/file",
                    "/loop": "/loop",
                }
                if self.path in targets:
                    self.send_response(302)
                    self.send_header("Location", targets[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"x" * (2048 if self.path == "/big" else 16)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    yield server
    server.server.shutdown()


def fetch(url: str, trusted: bool = True, max_bytes: int = 1024) -> bytes:
    return download(url, max_bytes, KEY if trusted else {}, allow_private=False, trusted_origin=trusted)


@pytest.mark.parametrize(
    ("path", "refusal"),
    [
        ("/to-loopback", "private address (127.0.0.1)"),
        ("/to-link-local", "private address (169.254.169.254)"),
        ("/to-private", "private address (10.1.2.3)"),
        ("/to-v6", "private address (::1)"),
        ("/to-http", "non-https"),
    ],
)
def test_a_redirect_off_the_gateway_to_a_private_or_plain_address_is_refused(
    gateway: Gateway, path: str, refusal: str
) -> None:
    with pytest.raises(GenerationError, match=rf"{refusal.replace('(', '[(]').replace(')', '[)]')}"):
        fetch(gateway.url + path)
    assert [p for p, _ in gateway.seen] == [path]  # the refused address was never contacted


def test_the_key_goes_to_the_gateway_only_never_along_a_redirect(gateway: Gateway) -> None:
    assert fetch(gateway.url + "/same-origin") == b"x" * 16
    assert gateway.seen == [("/same-origin", KEY["Authorization"]), ("/file", None)]


def test_the_redirect_limit(gateway: Gateway) -> None:
    with pytest.raises(GenerationError, match="redirected too many times"):
        fetch(gateway.url + "/loop")
    assert len(gateway.seen) == MAX_REDIRECTS + 1


def test_the_size_cap(gateway: Gateway) -> None:
    with pytest.raises(GenerationError, match="over the"):
        fetch(gateway.url + "/big")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/file",
        "https://127.0.0.1:{port}/file",
        "https://localhost:{port}/file",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]:{port}/file",
        "https://0.0.0.0:{port}/file",
        "file:///etc/passwd",
    ],
)
def test_an_address_from_the_provider_must_be_public_https(gateway: Gateway, url: str) -> None:
    with pytest.raises(GenerationError, match="non-https|private address"):
        fetch(url.format(port=gateway.server.server_port), trusted=False)
    assert gateway.seen == []
