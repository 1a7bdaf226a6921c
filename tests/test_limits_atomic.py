"""`Limits.reserve` called from many threads at the same instant, against the real test Redis.

The HTTP burst of test_limits.py goes through the app's event loop, which spaces the reservations
out: a check and a reservation made in two steps (a script that only checks, then an add from
Python) passed it. Here 30 threads wait on one barrier and call `reserve` directly, over several
rounds, so a check-then-add lets more than the limit through.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from redis import Redis

from dailies.app.errors import ApiError
from dailies.app.limits import Limits, Quota
from dailies.contract.spec import new_id

THREADS = 30
ROUNDS = 8


def race(limits: Limits, who: list[str], backend: str, quota: Quota) -> Counter[str]:
    """One reservation per thread, all released together: what each got (ok or the refusal's code)."""
    gate = threading.Barrier(len(who))
    outcomes: list[str] = [""] * len(who)

    def one(i: int) -> None:
        job_id = new_id()
        gate.wait()
        try:
            limits.reserve(who[i], backend, job_id, quota)
            outcomes[i] = "ok"
        except ApiError as exc:
            outcomes[i] = exc.code

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(who))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return Counter(outcomes)


def pooled(redis_url: str) -> Redis:
    # A pool as big as the burst, so no thread waits for a connection (that would space them out).
    return Redis.from_url(redis_url, max_connections=THREADS + 2)


@pytest.fixture
def limits(redis_url: str) -> Limits:
    return Limits(pooled(redis_url), queue_max=1000, heartbeat_s=2.0)


def test_one_visitor_racing_thirty_reservations_gets_exactly_its_limit(limits: Limits) -> None:
    for round_ in range(ROUNDS):
        got = race(limits, [f"203.0.113.{round_}"] * THREADS, "preview", Quota(max_active=2, max_per_hour=None))
        assert got == {"ok": 2, "too_many_jobs": THREADS - 2}, f"round {round_}: {dict(got)}"


def test_hourly_limit_holds_under_a_race(limits: Limits) -> None:
    for round_ in range(ROUNDS):
        got = race(limits, [f"198.51.100.{round_}"] * THREADS, "preview", Quota(max_active=None, max_per_hour=2))
        assert got == {"ok": 2, "hourly_limit": THREADS - 2}, f"round {round_}: {dict(got)}"


def test_queue_cap_holds_when_thirty_visitors_race(redis_url: str) -> None:
    limits = Limits(pooled(redis_url), queue_max=2, heartbeat_s=2.0)
    unlimited = Quota(max_active=None, max_per_hour=None)
    for round_ in range(ROUNDS):
        got = race(limits, [f"visitor-{round_}-{i}" for i in range(THREADS)], f"backend-{round_}", unlimited)
        assert got == {"ok": 2, "queue_full": THREADS - 2}, f"round {round_}: {dict(got)}"
