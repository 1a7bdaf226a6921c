"""The visitor cookie: a random token that says which browser (or API client) made a job, so that
only it may cancel or retry that job (dailies/app/visitors.py turns it into an owner).

`VisitorCookie`, an ASGI middleware on the whole app, mints one for any request that arrives
without a well-formed one, adds it to that request's own headers (so a job submitted in the very
first request already belongs to the cookie the client gets back) and sets it on the response.
Inside the huggingface.co iframe it is a third-party cookie, hence `SameSite=None; Secure;
Partitioned` over https (`set_cookie_header` says what plain http gets). Only its hash is ever
stored; the value itself is neither stored nor logged.
"""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "dailies_visitor"
MAX_AGE_S = 400 * 24 * 3600  # the longest a browser keeps a cookie (Chromium's cap)
VALUE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 random bits


def new_value() -> str:
    return secrets.token_urlsafe(32)


def value_in(cookie_header: str) -> str | None:
    """The visitor cookie's value in a Cookie header, or None when it has no well-formed one.
    The last one wins: the middleware appends the one it mints after any malformed one."""
    found = None
    for pair in cookie_header.split(";"):
        name, _, value = pair.strip().partition("=")
        if name == COOKIE and VALUE.fullmatch(value):
            found = value
    return found


def set_cookie_header(value: str, secure: bool) -> str:
    """The Set-Cookie value. Over https it may be third-party (the Space's page inside the
    huggingface.co iframe). Over plain http it cannot be (the Hub's https page may not frame it),
    and a `Secure` cookie would not come back from most HTTP clients (Python's cookie jars keep
    it for https): a first-party one instead."""
    where = "SameSite=None; Secure; Partitioned" if secure else "SameSite=Lax"
    return f"{COOKIE}={value}; Max-Age={MAX_AGE_S}; Path=/; HttpOnly; {where}"


def over_https(scope: Scope) -> bool:
    """Whether the client reached us over https: directly, or through a proxy that says so (the
    Spaces proxy does; a client that lies only changes its own cookie's attributes)."""
    forwarded = next((v for k, v in scope.get("headers", []) if k == b"x-forwarded-proto"), b"")
    return scope.get("scheme") == "https" or forwarded.split(b",")[0].strip().lower() == b"https"


class VisitorCookie:
    """Gives every HTTP request a visitor cookie (ASGI middleware; websockets pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = "; ".join(v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie")
        if value_in(sent) is not None:
            await self.app(scope, receive, send)
            return
        minted = new_value()
        joined = f"{sent}; {COOKIE}={minted}" if sent else f"{COOKIE}={minted}"
        others = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
        scope = {**scope, "headers": [*others, (b"cookie", joined.encode("latin-1"))]}
        set_cookie = (b"set-cookie", set_cookie_header(minted, over_https(scope)).encode())

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), set_cookie]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
