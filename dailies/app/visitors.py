"""Who a visitor is: for limits and sign-in (`key`), and for whose jobs are whose (`owner`).

- The page: the signed-in `gr.OAuthProfile` where the Space enables `hf_oauth`.
- The JSON API: a Hugging Face token as `Authorization: Bearer hf_...`, identified by the Hub's
  whoami and cached here (whoami is strictly rate-limited); the token itself is kept only as a
  hash and never logged.
- Otherwise, for limits, the client address (behind the Spaces proxy, the entry it appended to
  X-Forwarded-For): clearing a cookie must not reset a limit. For ownership, the visitor cookie
  (dailies/app/visitor_cookie.py), as a hash: an address is shared by many visitors.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from huggingface_hub import constants
from starlette.requests import Request

from dailies.app import visitor_cookie
from dailies.app.errors import ApiError
from dailies.contract.settings import Settings

WHOAMI_TTL_S = 600  # a known token is asked about again after this
REFUSED_TTL_S = 60  # a refused one is not sent to the Hub again before this
WHOAMI_TIMEOUT_S = 5.0  # the Hub answers whoami in well under a second
WHOAMI_THREADS = 4  # its own pool: a silent Hub never takes the app's shared threads
WHOAMI_WAITING_MAX = 16  # more unknown tokens than this waiting at once get a 503 at once
UNKNOWN_TOKENS_PER_MINUTE = 10  # per address: a new token costs a Hub call (and whoami is rate-limited)
TOKEN = re.compile(r"[A-Za-z0-9_\-]{8,200}")
log = logging.getLogger("dailies.app.visitors")


@dataclass(frozen=True)
class Visitor:
    """`key` is what limits count by: `hf:<username>` or `addr:<client address>`. `owner` is
    whose jobs it makes and may cancel or retry: `hf:<username>`, or `cookie:<sha256 of the
    visitor cookie>`; None without either (its jobs belong to no one)."""

    key: str
    username: str | None = None
    owner: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.username is not None

    def owns(self, owner: str | None) -> bool:
        """Whether a job or comparison recorded with `owner` is this visitor's (one without is no one's)."""
        return owner is not None and owner == self.owner


def client_address(request: Request, hops: int) -> str:
    """The client's address. Behind `hops` proxies, each appending the address it was called from
    to X-Forwarded-For, the entry the outermost one appended: the entries left of it are written by
    the client and prove nothing. Too few entries: the request did not come through the proxies."""
    peer = request.client.host if request.client else "unknown"
    if hops == 0:
        return peer
    entries = [e.strip() for e in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    return entries[-hops] if len(entries) >= hops and entries[-hops] else peer


def signed_in(username: str) -> Visitor:
    key = f"hf:{username.lower()}"
    return Visitor(key, username, key)


def of_page(request: Request, username: str | None, settings: Settings) -> Visitor:
    """The visitor of a page event: the `gr.OAuthProfile`'s username when signed in."""
    return signed_in(username) if username else anonymous(request, settings)


def anonymous(request: Request, settings: Settings) -> Visitor:
    return Visitor(f"addr:{client_address(request, settings.forwarded_hops)}", owner=cookie_owner(request))


def cookie_owner(request: Request) -> str | None:
    """The owner named by the request's visitor cookie (its hash: the value is a secret)."""
    value = visitor_cookie.value_in(request.headers.get("cookie", ""))
    return None if value is None else f"cookie:{hashlib.sha256(value.encode()).hexdigest()}"


class Whoami:
    """Hugging Face usernames of bearer tokens, through the Hub's whoami, cached by token hash.

    The Hub is asked on a small pool of its own with a timeout, never on the app's shared
    threads: a Hub that does not answer costs the callers with unknown tokens a 503, and every
    other route keeps answering. One address may send only a few unknown tokens a minute.
    """

    def __init__(self, endpoint: str | None = None) -> None:
        self.endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._asked: dict[str, list[float]] = {}  # address -> times it sent an unknown token
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(WHOAMI_THREADS, thread_name_prefix="whoami")
        self._in_flight = 0
        self._http = httpx.Client(timeout=WHOAMI_TIMEOUT_S)

    async def visitor(self, request: Request, settings: Settings) -> Visitor:
        """The visitor of an API request: signed in by its bearer token, or anonymous without one."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not token:
            return anonymous(request, settings)
        token = token.strip()
        if scheme.lower() != "bearer" or not TOKEN.fullmatch(token):
            raise ApiError(401, "bad_token", "send a Hugging Face token as 'Authorization: Bearer hf_...'")
        digest = hashlib.sha256(token.encode()).hexdigest()
        found = self._cached(digest)
        if found is None:
            self._count_unknown(client_address(request, settings.forwarded_hops))
            found = (await self._ask(digest, token),)
        if found[0] is None:
            raise ApiError(401, "bad_token", "the Hugging Face Hub refused this token")
        return signed_in(found[0])

    def _cached(self, digest: str) -> tuple[str | None] | None:
        with self._lock:
            cached = self._cache.get(digest)
        return (cached[1],) if cached and cached[0] > time.monotonic() else None

    def _count_unknown(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._asked) > 10_000:
                self._asked.clear()
            recent = [t for t in self._asked.get(address, []) if now - t < 60]
            if len(recent) >= UNKNOWN_TOKENS_PER_MINUTE:
                self._asked[address] = recent
                wait = max(1, round(60 - (now - recent[0])))
                raise ApiError(
                    429,
                    "too_many_tokens",
                    f"too many new tokens from this address; try again in {wait} s",
                    retry_after=wait,
                )
            self._asked[address] = [*recent, now]

    async def _ask(self, digest: str, token: str) -> str | None:
        with self._lock:
            if self._in_flight >= WHOAMI_WAITING_MAX:
                raise _hub_unavailable()
            self._in_flight += 1
        try:
            name = await asyncio.wait_for(asyncio.wrap_future(self._pool.submit(self._whoami, token)), WHOAMI_TIMEOUT_S)
        except TimeoutError:
            log.warning("whoami did not answer within %s s", WHOAMI_TIMEOUT_S)
            raise _hub_unavailable() from None
        finally:
            with self._lock:
                self._in_flight -= 1
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + (WHOAMI_TTL_S if name else REFUSED_TTL_S), name)
        return name

    def _whoami(self, token: str) -> str | None:
        """On the pool: the token's username, None when the Hub refuses it, ApiError when it cannot say."""
        try:
            answer = self._http.get(f"{self.endpoint}/api/whoami-v2", headers={"authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:  # unreachable or too slow: not the visitor's fault, nor a reason to let them in
            log.warning("whoami failed: %s", type(exc).__name__)
            raise _hub_unavailable() from None
        if answer.status_code in (401, 403):
            return None
        if answer.status_code != 200:
            raise _hub_unavailable()
        try:
            name = answer.json().get("name")
        except ValueError:
            raise _hub_unavailable() from None
        return name if isinstance(name, str) and name else None


def _hub_unavailable() -> ApiError:
    message = "the Hugging Face Hub could not check the token; try again in 30 s"
    return ApiError(503, "hub_unavailable", message, retry_after=30)
