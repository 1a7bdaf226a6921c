"""The visitor cookie and the owner it gives a visitor, in-process: no Redis, no app process."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from dailies.app import visitor_cookie
from dailies.app.visitor_cookie import COOKIE, VisitorCookie
from dailies.app.visitors import Visitor, cookie_owner, signed_in

pytestmark = pytest.mark.unit


def echo_owner(request: Request) -> PlainTextResponse:
    return PlainTextResponse(cookie_owner(request) or "")


def client() -> TestClient:
    """An app behind the middleware that answers the owner its handler sees; no cookie jar."""
    app = Starlette(routes=[Route("/", echo_owner)])
    app.add_middleware(VisitorCookie)
    return TestClient(app, cookies=None)


def hashed(value: str) -> str:
    return f"cookie:{hashlib.sha256(value.encode()).hexdigest()}"


def set_value(answer) -> str | None:
    cookie = answer.headers.get("set-cookie")
    return cookie.split(";")[0].removeprefix(f"{COOKIE}=") if cookie else None


def test_a_request_without_the_cookie_gets_one_and_already_owns_by_it() -> None:
    answer = client().get("/")
    minted = set_value(answer)
    assert minted is not None and visitor_cookie.VALUE.fullmatch(minted)
    # The handler of that very request saw the cookie it hands out, as a hash only.
    assert answer.text == hashed(minted) and minted not in answer.text
    attributes = {a.strip() for a in answer.headers["set-cookie"].split(";")[1:]}
    # Plain http: a first-party cookie (a Secure one would not come back from Python's cookie jars).
    assert {"Path=/", "HttpOnly", "SameSite=Lax"} <= attributes and "Secure" not in attributes


def test_over_https_it_is_a_partitioned_third_party_cookie() -> None:
    for headers in ({"x-forwarded-proto": "https"}, {"X-Forwarded-Proto": "HTTPS, http"}):
        answer = client().get("/", headers=headers)
        attributes = {a.strip() for a in answer.headers["set-cookie"].split(";")[1:]}
        assert {"Path=/", "HttpOnly", "SameSite=None", "Secure", "Partitioned"} <= attributes
    assert "Secure" in TestClient(client().app, base_url="https://space.example").get("/").headers["set-cookie"]


def test_a_well_formed_cookie_is_kept_and_a_malformed_one_replaced() -> None:
    value = visitor_cookie.new_value()
    kept = client().get("/", headers={"cookie": f"other=1; {COOKIE}={value}"})
    assert "set-cookie" not in kept.headers and kept.text == hashed(value)
    for bad in ("", "short", value + "x", value[:-1] + "!", f'"{value}"'):
        answer = client().get("/", headers={"cookie": f"{COOKIE}={bad}"})
        minted = set_value(answer)
        assert minted not in (None, bad) and answer.text == hashed(minted)


@given(
    st.one_of(
        st.text(max_size=300),
        st.builds(lambda a, v, b: f"{a}{COOKIE}={v}{b}", st.text(max_size=50), st.text(max_size=60), st.text()),
    )
)
def test_any_cookie_header_gives_no_owner_or_a_well_formed_value_it_holds(header: str) -> None:
    found = visitor_cookie.value_in(header)
    assert found is None or (visitor_cookie.VALUE.fullmatch(found) and f"{COOKIE}={found}" in header)


def test_only_the_recorded_owner_owns() -> None:
    me = Visitor("addr:1.2.3.4", owner=hashed(visitor_cookie.new_value()))
    assert me.owns(me.owner)
    assert not me.owns(None)  # a job from before owners is no one's
    assert not me.owns(hashed(visitor_cookie.new_value()))  # the same address, another browser
    assert not Visitor("addr:1.2.3.4").owns(None)  # no cookie owns nothing, not even the ownerless
    user = signed_in("Someone")
    assert user.owner == user.key == "hf:someone" and user.owns("hf:someone") and not user.owns(me.owner)
