"""Every Redis key Dailies uses, in one place (RQ's own keys stay RQ's).

| key | type | written by | holds |
|---|---|---|---|
| `rq:queue:dailies:<backend>` | list (RQ) | app | queued jobs of one backend (`queue_name`) |
| `dailies:job:<id>` | hash | `job_record` only | status, progress, message, request, result, heartbeat, owner |
| `dailies:changes` | pub/sub channel | `job_record` | the id of each job whose record changed |
| `dailies:image:<id>` | string, TTL | `job_record` only | a queued job's start image, deleted when the job ends |
| `dailies:cancel:<id>` | string | app | a cancel request the backend checks between steps |
| `dailies:result:<id>` | hash, TTL | worker | MP4, poster and metadata waiting for the collector |
| `dailies:collect` | list | worker | ids of results to collect |
| `dailies:collecting` | list | app | ids the collector is storing (finished again on start) |
| `dailies:active:<hash>` | sorted set | app | a visitor's queued and running jobs (only a hash of who they are) |
| `dailies:hourly:<hash>` | sorted set, TTL | app | a visitor's submissions in the last hour |
| `dailies:reports:<hash>` | sorted set, TTL | app | a visitor's reports in the last hour (`limits.Window`) |
| `dailies:queued:<backend>` | sorted set | app | a backend's queued job ids, for the queue cap |
| `dailies:group:<id>` | hash | app | a comparison: its prompt, creation time, job ids and owner (a hash of who) |
| `dailies:due:<backend>` | sorted set | worker | hosted jobs by the due time of their next poll |
| `dailies:polling:<id>` | string, TTL | worker | the lease of the worker polling a hosted job |
| `dailies:backend:<name>:misconfigured` | string, TTL | worker | why a provider refused its key |
| `dailies:run_seconds` | hash | app | each backend's recent run time (a moving average), for queued jobs' wait |
"""

from __future__ import annotations

import hashlib

CHANGES = "dailies:changes"
COLLECT = "dailies:collect"
COLLECTING = "dailies:collecting"
RUN_SECONDS = "dailies:run_seconds"


def queue_name(backend: str) -> str:
    """The RQ queue name of a backend (RQ prefixes its key with `rq:queue:`)."""
    return f"dailies:{backend}"


def job(job_id: str) -> str:
    return f"dailies:job:{job_id}"


def image(job_id: str) -> str:
    return f"dailies:image:{job_id}"


def cancel(job_id: str) -> str:
    return f"dailies:cancel:{job_id}"


def result(job_id: str) -> str:
    return f"dailies:result:{job_id}"


def group(group_id: str) -> str:
    return f"dailies:group:{group_id}"


def _visitor(who: str) -> str:
    # Only a hash of the visitor's address or name reaches Redis.
    return hashlib.sha256(who.encode()).hexdigest()[:24]


def active(who: str) -> str:
    return f"dailies:active:{_visitor(who)}"


def hourly(who: str) -> str:
    return f"dailies:hourly:{_visitor(who)}"


def reports(who: str) -> str:
    return f"dailies:reports:{_visitor(who)}"


def queued(backend: str) -> str:
    return f"dailies:queued:{backend}"


def due(backend: str) -> str:
    return f"dailies:due:{backend}"


def polling(job_id: str) -> str:
    return f"dailies:polling:{job_id}"


def misconfigured(backend: str) -> str:
    """Set by a worker whose provider refused its key; the reason (never the key) makes the backend unavailable."""
    return f"dailies:backend:{backend}:misconfigured"


def decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    """A hash as Redis returns it, as text."""
    return {k.decode(): v.decode() for k, v in raw.items()}
