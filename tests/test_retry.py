"""Retry-After and backoff, as the publisher and the hosted backends read them."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from dailies.contract.retry import backoff, retry_after

pytestmark = pytest.mark.unit


def test_retry_after_reads_seconds_and_http_dates_in_any_case() -> None:
    assert retry_after(httpx.Headers({"Retry-After": "7"})) == 7.0
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= retry_after(httpx.Headers({"retry-after": in_a_minute})) <= 60
    assert retry_after(httpx.Headers({"Retry-After": email.utils.formatdate(0, usegmt=True)})) == 0.0
    assert retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert retry_after(httpx.Headers({})) is None


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n) for n in (1, 2, 3, 7, 8)] == [1.0, 2.0, 4.0, 60.0, 60.0]
    assert [backoff(n, 5.0, 300.0) for n in (1, 2, 7)] == [5.0, 10.0, 300.0]
