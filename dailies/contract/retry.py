"""When to try again after a refused or failed call: the server's Retry-After, else an
exponential backoff. The app's publisher (Hub commits) and the worker's hosted backends both use it."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), if any.

    `headers` must look names up without regard to case, as httpx's and requests' do."""
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff(attempt: int, first_s: float = 1.0, max_s: float = 60.0) -> float:
    """Seconds before retry number `attempt` (1, 2, 3, ...): `first_s`, doubling up to `max_s`."""
    return min(max_s, first_s * 2.0 ** (attempt - 1))
