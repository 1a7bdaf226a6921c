"""Per-visitor and per-backend limits, checked and reserved in one Redis script (and a plain
sliding window for what is not a job, such as reports).

A check and a reservation made in two steps let a burst through (30 submissions released
together with a limit of 2 got 8 to 25 accepted): the script counts the visitor's active jobs,
their submissions in the last hour and the backend's queued jobs, and reserves the slot in the
same call, so exactly `limit` get through. Ids whose job has moved on (finished, or started
running for the queue cap) are pruned as the script reads them; a reservation whose job hash
never appeared (the app died between the two) is dropped after a minute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis

from dailies.app.errors import ApiError
from dailies.app.visitors import Visitor
from dailies.contract import keys
from dailies.contract.settings import Settings
from dailies.contract.spec import JOB_TTL, POLL_LEASE_S, STALE_BEATS, new_id

RETRY_ACTIVE_S = 30  # a job takes seconds to minutes: try again after about one short job
RETRY_QUEUE_S = 60

_SCRIPT = """
local now, job_id, prefix = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local max_active, max_hour, queue_max = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local silent_after, job_ttl = tonumber(ARGV[7]), tonumber(ARGV[8])

-- Drop ids whose job is no longer in one of the `live` states; count what is left.
local function live_count(key, live)
  local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    local id, reserved = members[i], tonumber(members[i + 1])
    local job = redis.call('HMGET', prefix .. id, 'status', 'heartbeat')
    local status, beat = job[1], tonumber(job[2])
    local gone = (status and not live[status])
      or (not status and reserved < now - 60)
      or (status == 'running' and beat and beat < now - silent_after)
    if gone then redis.call('ZREM', key, id) end
  end
  return redis.call('ZCARD', key)
end

if live_count(KEYS[3], {queued = true}) >= queue_max then
  return {'queue_full', 0}
end
if max_active >= 0 and live_count(KEYS[1], {queued = true, running = true}) >= max_active then
  return {'too_many_jobs', 0}
end
if max_hour >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 3600)
  if redis.call('ZCARD', KEYS[2]) >= max_hour then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {'hourly', tostring(tonumber(oldest[2]) + 3600 - now)}
  end
  redis.call('ZADD', KEYS[2], now, job_id)
  redis.call('EXPIRE', KEYS[2], 3600)
end
redis.call('ZADD', KEYS[3], now, job_id)
redis.call('ZADD', KEYS[1], now, job_id)
redis.call('EXPIRE', KEYS[1], job_ttl)
return {'ok', 0}
"""


# A sliding window: drop what is older than the window, refuse when full (answering the seconds
# until the oldest leaves it), else count this one; all in one call, so a burst cannot slip past.
_WINDOW = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window))
return false
"""


@dataclass(frozen=True)
class Quota:
    """What one visitor may have: active jobs and submissions per hour (None: no limit)."""

    max_active: int | None
    max_per_hour: int | None


def quota_for(visitor: Visitor, settings: Settings) -> Quota:
    if visitor.username and visitor.username.lower() in settings.exempt_users:
        return Quota(None, None)
    if visitor.signed_in:
        return Quota(settings.signed_in_max_active, settings.signed_in_max_per_hour)
    return Quota(settings.user_max_active, settings.user_max_per_hour)


class Limits:
    def __init__(self, redis: Redis, queue_max: int, heartbeat_s: float) -> None:
        self.redis = redis
        self.queue_max = queue_max
        self.silent_after = STALE_BEATS * heartbeat_s + POLL_LEASE_S
        self._script = redis.register_script(_SCRIPT)

    def reserve(self, who: str, backend: str, job_id: str, quota: Quota) -> None:
        """Count `job_id` against the visitor and the backend's queue, or raise a 429 that says when to retry."""
        code, value = self._script(
            keys=[keys.active(who), keys.hourly(who), keys.queued(backend)],
            args=[
                time.time(),
                job_id,
                keys.job(""),
                -1 if quota.max_active is None else quota.max_active,
                -1 if quota.max_per_hour is None else quota.max_per_hour,
                self.queue_max,
                self.silent_after,
                JOB_TTL,
            ],
        )
        code = code.decode()
        if code == "queue_full":
            raise ApiError(
                429,
                "queue_full",
                f"the queue for this backend is full; try again in {RETRY_QUEUE_S} s",
                retry_after=RETRY_QUEUE_S,
            )
        if code == "too_many_jobs":
            raise ApiError(
                429,
                "too_many_jobs",
                f"you already have {quota.max_active} jobs waiting or running; try again in {RETRY_ACTIVE_S} s, "
                "when one has finished, or cancel one",
                retry_after=RETRY_ACTIVE_S,
            )
        if code == "hourly":
            wait = max(1, int(float(value) + 0.999))
            raise ApiError(
                429,
                "hourly_limit",
                f"you have made {quota.max_per_hour} submissions in the last hour; "
                f"the next is possible in {_spoken(wait)}",
                retry_after=wait,
            )

    def release(self, who: str, backend: str, job_id: str) -> None:
        """Give a reservation back (the job could not be queued after all)."""
        with self.redis.pipeline() as pipe:
            for key in (keys.active(who), keys.hourly(who), keys.queued(backend)):
                pipe.zrem(key, job_id)
            pipe.execute()


class Window:
    """At most `limit` events per `window_s` seconds for one key (reports per visitor)."""

    def __init__(self, redis: Redis, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._script = redis.register_script(_WINDOW)

    def take(self, key: str) -> int | None:
        """Count one event; None when it fits, else the whole seconds until one would."""
        wait = self._script(keys=[key], args=[time.time(), self.window_s, self.limit, new_id()])
        return None if wait is None else max(1, int(float(wait) + 0.999))


def _spoken(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"
