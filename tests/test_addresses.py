"""The client address behind proxies, and the public address: never what the client writes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from dailies.app.visitors import client_address
from dailies.contract.settings import Settings

PEER = "10.0.0.5"
entry = st.text(st.characters(codec="latin-1", exclude_characters=",\r\n"), max_size=40)


def request(*forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    return Request({"type": "http", "headers": headers, "client": (PEER, 5555)})


@pytest.mark.unit
@given(st.lists(entry, max_size=5), st.lists(st.ip_addresses().map(str), min_size=1, max_size=3))
def test_the_address_is_what_the_trusted_proxies_appended(client_written: list[str], appended: list[str]) -> None:
    """Whatever the client writes in front, N trusted proxies give the entry the outermost appended."""
    header = ", ".join([*client_written, *appended])
    assert client_address(request(header), len(appended)) == appended[0]
    assert client_address(request(header), 0) == PEER


@pytest.mark.unit
def test_fewer_entries_than_proxies_and_repeated_headers() -> None:
    assert client_address(request(), 1) == PEER  # did not come through the proxy
    assert client_address(request("192.0.2.1"), 2) == PEER
    # Two header lines are one list (RFC 9110 5.3): the proxy's entry is still the last.
    assert client_address(request("203.0.113.1", "192.0.2.1"), 1) == "192.0.2.1"


@pytest.mark.unit
def test_the_public_address_comes_from_configuration() -> None:
    assert (
        Settings.from_env({"SPACE_HOST": "someone-dailies.hf.space"}).public_url == "https://someone-dailies.hf.space/"
    )
    assert Settings.from_env({"DAILIES_PUBLIC_URL": "https://video.example/studio/"}).public_url == (
        "https://video.example/studio/"
    )
    assert Settings.from_env({"GRADIO_SERVER_PORT": "9000"}).public_url == "http://localhost:9000/"
    for bad in ("javascript:alert(1)", 'https://x.example/" onload="alert(1)'):
        with pytest.raises(SystemExit):
            Settings.from_env({"DAILIES_PUBLIC_URL": bad})
