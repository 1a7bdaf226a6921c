"""The job record: one module writes a job's hash, and Redis itself keeps its life in order."""

from __future__ import annotations

import ast
import base64
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from redis import Redis

from dailies.contract import keys
from dailies.contract.job_record import Field, JobRecord, JobStatus, Reporter, ResultMeta, Superseded
from dailies.contract.settings import Settings
from tests.conftest import ROOT, App


def queued(redis: Redis, job_id: str = "0" * 24) -> JobRecord:
    record = JobRecord(redis, job_id)
    record.create("preview", {"prompt": "a boat"}, in_request=False)
    return record


def test_a_job_lives_queued_running_then_ends_once(redis: Redis) -> None:
    record = queued(redis)
    assert record.start() == 1
    assert record.read()[Field.STATUS] == "running"
    assert record.end(JobStatus.SUCCEEDED, result=json.dumps({"ok": 1}))
    # A finished job never changes again: not canceled, not failed, not queued, not a field.
    assert not record.end(JobStatus.CANCELED)
    assert not record.end(JobStatus.FAILED, error="late")
    assert not record.requeue("again")
    assert not record.update(message="late")
    raw = record.read()
    assert (raw["status"], raw.get("error"), raw.get("message", "")) == ("succeeded", None, "")


def test_the_collector_cannot_turn_a_canceled_job_into_a_succeeded_one(redis: Redis) -> None:
    record = queued(redis)
    record.start()
    assert record.end(JobStatus.CANCELED)
    assert not JobRecord(redis, record.id).end(JobStatus.SUCCEEDED)
    assert record.read()["status"] == "canceled"


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.QUEUED])
def test_transitions_the_life_does_not_allow_are_refused(redis: Redis, status: JobStatus) -> None:
    record = queued(redis)
    # queued -> succeeded skips the run; queued -> start twice is two runs of one job.
    if status.terminal:
        assert not record.end(status)
    else:
        assert record.start() == 1 and record.requeue("worker stopped") and record.start() == 2
        assert record.start() is None
    assert record.read()["status"] in ("queued", "running")


def test_a_stale_run_writes_nothing_once_its_job_was_handed_on(redis: Redis) -> None:
    record = queued(redis)
    first = Reporter(JobRecord(redis, record.id, run=record.start()))
    assert JobRecord(redis, record.id).requeue("worker stopped; running again")
    second = Reporter(JobRecord(redis, record.id))
    assert second.record.start() == 2
    # The first worker wakes up: its progress is refused, it sees it must stop, its end is refused.
    with pytest.raises(Superseded):
        first.progress(0.5, "step 5/10")
    assert first.cancelled() and not second.cancelled()
    assert not first.end(JobStatus.FAILED, error="stale")
    second.progress(0.5, "step 5/10")
    assert record.read()["message"] == "step 5/10"
    assert second.end(JobStatus.CANCELED)


def test_a_stale_run_hands_back_nothing(redis: Redis) -> None:
    """Its video would take the place of its successor's result, and reach the collector."""
    record = queued(redis)
    first = Reporter(JobRecord(redis, record.id, run=record.start()))
    assert JobRecord(redis, record.id).requeue("worker stopped; running again") and record.start() == 2
    meta = ResultMeta("preview", 8, 8, 1, 8, False, 0.0, 1.0, run=1)
    assert first.hand_back(b"mp4", b"jpg", meta, Settings.from_env({})) is None
    assert not redis.exists(keys.result(record.id)) and not redis.llen(keys.COLLECT)
    second = Reporter(JobRecord(redis, record.id, run=2))
    assert second.hand_back(b"mp4", b"jpg", replace(meta, run=2), Settings.from_env({})) is JobStatus.RUNNING
    assert redis.lrange(keys.COLLECT, 0, -1) == [record.id.encode()]


@pytest.mark.parametrize("end", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED])
def test_the_start_image_stays_while_the_job_may_run_and_leaves_when_it_ends(redis: Redis, end: JobStatus) -> None:
    record = JobRecord(redis, "1" * 24)
    record.create("wan", {"prompt": "a boat"}, in_request=False, image=b"picture")
    assert record.start() == 1 and record.requeue("worker stopped") and record.start() == 2
    assert record.image() == b"picture"
    assert record.end(end)
    assert record.image() is None


def test_unknown_fields_are_refused_before_anything_is_written(redis: Redis) -> None:
    record = queued(redis)
    with pytest.raises(ValueError, match="not fields"):
        record.update(statuss="running")
    assert record.read()["status"] == "queued"


def test_every_change_is_announced_on_the_changes_channel(redis: Redis) -> None:
    listener = redis.pubsub(ignore_subscribe_messages=True)
    listener.subscribe(keys.CHANGES)
    record = queued(redis, "1" * 24)
    record.start()
    record.update(progress=0.5)
    record.end(JobStatus.SUCCEEDED)
    record.end(JobStatus.FAILED)  # refused: announces nothing
    seen, deadline = [], time.monotonic() + 5
    while len(seen) < 5 and time.monotonic() < deadline:
        message = listener.get_message(timeout=0.2)
        if message:
            seen.append(message["data"].decode())
    assert seen == ["1" * 24] * 4


# -- one writer ------------------------------------------------------------------------------

WRITES = {"hset", "hsetnx", "hdel", "hincrby", "hincrbyfloat", "hmset", "delete", "expire", "persist"}
SOURCES = [ROOT / "app.py", ROOT / "worker.py", *(ROOT / "dailies").rglob("*.py"), *(ROOT / "backends").rglob("*.py")]
OWNER = ROOT / "dailies" / "contract" / "job_record.py"


def _job_writes(path: Path) -> list[str]:
    """Calls that write a job's hash (`keys.job(...)`) outside the record module, as path:line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
            if any("keys.job(" in ast.unparse(arg) for arg in node.args):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


@pytest.mark.unit
def test_no_module_but_the_job_record_writes_a_job_s_hash() -> None:
    assert OWNER.exists()
    assert [w for path in SOURCES if path != OWNER for w in _job_writes(path)] == []
    # The rule sees a write where there is one.
    assert _job_writes(ROOT / "tests" / "test_faults.py")


@pytest.mark.unit
def test_no_module_but_the_job_record_names_a_status_value_in_a_write() -> None:
    """Status values and job fields are `JobStatus` and `Field` members everywhere else: a bare
    "status" key in a mapping written to Redis would bypass the life the script enforces."""
    offenders = []
    for path in SOURCES:
        if path == OWNER:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
                text = ast.unparse(node)
                if "'status'" in text or "Field.STATUS" in text:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_a_job_queued_before_an_upgrade_runs_after_it(app: App, redis: Redis) -> None:
    """RQ keeps the pickled spec and the runner's dotted path: a job queued by the version before the
    job record (tests/data/queued_before_upgrade.json, RQ's hash and ours as that version wrote them)
    still runs, ends succeeded and is stored."""
    saved = json.loads((ROOT / "tests" / "data" / "queued_before_upgrade.json").read_text())
    job_id = "0190a0b0c0d0e0f000000001"
    redis.hset(f"rq:job:{job_id}", mapping={k: base64.b64decode(v) for k, v in saved["rq_job"].items()})
    redis.hset(keys.job(job_id), mapping={**saved["record"], "created": time.time()})
    redis.rpush("rq:queue:dailies:preview", job_id)
    done = app.wait_done(job_id)
    assert done["status"] == "succeeded", done
    assert (done["result"]["width"], done["result"]["num_frames"], done["result"]["seed"]) == (64, 4, 1234)
    found = app.client.get("/api/v1/generations", params={"q": "lantern queued"}).json()["items"]
    assert [g["id"] for g in found] == [job_id]
