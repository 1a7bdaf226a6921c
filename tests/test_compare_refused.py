"""A comparison refused part-way gives back every slot it reserved and leaves no group behind.

`Jobs.enqueue` reserves room for all the group's jobs, then queues them; when a reservation is
refused, or queueing fails after the reservations, what it took must be released, or the visitor
is held back by jobs that do not exist. The group's record (`dailies:group:<id>`) must not stay
either: it would name jobs that were never queued. Through the real app, Redis and a worker.
"""

from __future__ import annotations

from pathlib import Path

from redis import Redis

from tests.conftest import App, Processes, start_app
from tests.harness import Proc, paused

ONE = {"prompt": "a lighthouse at dusk", "backend": "preview"}
PAIR = {"prompt": "a lighthouse at dusk", "backends": ["preview", "wan"], "duration_s": 1.0}


def studio(processes: Processes, tmp_path: Path, redis_url: str) -> tuple[App, Proc]:
    """The app, a visitor limit of 2 active jobs, and one worker serving both backends' queues
    (the wan model is never loaded: no job runs while the worker is paused)."""
    worker = processes.worker(redis_url, backends="preview,wan", DAILIES_DEVICE="cpu")
    return start_app(processes, tmp_path, redis_url, DAILIES_USER_MAX_ACTIVE="2"), worker


def groups(redis: Redis) -> list[bytes]:
    return redis.keys("dailies:group:*")


def test_a_comparison_refused_at_its_second_reservation_frees_the_first(
    processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    app, worker = studio(processes, tmp_path, redis_url)
    redis = Redis.from_url(redis_url)
    with paused(worker):
        assert app.submit(**ONE).status_code == 202  # one of two slots taken
        # preview's reservation takes the second slot, wan's is refused: the whole group is.
        refused = app.client.post("/api/v1/jobs", json=PAIR)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_jobs", refused.text
        assert groups(redis) == []
        # The second slot is free again: one more job is taken, then the limit holds.
        again = app.submit(**ONE)
        assert again.status_code == 202, again.text
        assert app.submit(**ONE).status_code == 429


def test_a_comparison_whose_queueing_fails_frees_its_slots(
    processes: Processes, tmp_path: Path, redis_url: str
) -> None:
    app, _ = studio(processes, tmp_path, redis_url)
    redis = Redis.from_url(redis_url)
    # RQ adds each queue's name to the set `rq:queues` when it queues a job: with a string in its
    # place Redis refuses that (WRONGTYPE), after both reservations were made.
    redis.set("rq:queues", "not a set")
    try:
        failed = app.client.post("/api/v1/jobs", json=PAIR)
        assert failed.status_code == 503 and failed.json()["error"]["code"] == "unavailable", failed.text
        assert groups(redis) == []
    finally:
        redis.delete("rq:queues")
    # Both slots are the visitor's again.
    assert [app.submit(**ONE).status_code for _ in range(3)] == [202, 202, 429]
