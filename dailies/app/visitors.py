"""Who a visitor is, for limits and sign-in: a Hugging Face username, else the client address.

- The page: the signed-in `gr.OAuthProfile` where the Space enables `hf_oauth`.
- The JSON API: a Hugging Face token as `Authorization: Bearer hf_...`, identified by the Hub's
  whoami and cached here (whoami is strictly rate-limited); the token itself is kept only as a
  hash and never logged.
- Otherwise the client address; the forwarded header only behind the Spaces proxy.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from starlette.requests import Request

from dailies.app.errors import ApiError
from dailies.contract.settings import Settings

WHOAMI_TTL_S = 600  # a known token is asked about again after this
REFUSED_TTL_S = 60  # a refused one is not sent to the Hub again before this
TOKEN = re.compile(r"[A-Za-z0-9_\-]{8,200}")
log = logging.getLogger("dailies.app.visitors")


@dataclass(frozen=True)
class Visitor:
    """`key` is what limits count by: `hf:<username>` or `addr:<client address>`."""

    key: str
    username: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.username is not None


def client_address(request: Request, trust_forwarded: bool) -> str:
    """The client's address; behind the Spaces proxy, the first forwarded address."""
    if trust_forwarded:
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.client.host if request.client else "unknown"


def signed_in(username: str) -> Visitor:
    return Visitor(f"hf:{username.lower()}", username)


def of_page(request: Request, username: str | None, settings: Settings) -> Visitor:
    """The visitor of a page event: the `gr.OAuthProfile`'s username when signed in."""
    return signed_in(username) if username else anonymous(request, settings)


def anonymous(request: Request, settings: Settings) -> Visitor:
    return Visitor(f"addr:{client_address(request, settings.trust_forwarded)}")


class Whoami:
    """Hugging Face usernames of bearer tokens, through the Hub's whoami, cached by token hash."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def visitor(self, request: Request, settings: Settings) -> Visitor:
        """The visitor of an API request: signed in by its bearer token, or anonymous without one."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not token:
            return anonymous(request, settings)
        token = token.strip()
        if scheme.lower() != "bearer" or not TOKEN.fullmatch(token):
            raise ApiError(401, "bad_token", "send a Hugging Face token as 'Authorization: Bearer hf_...'")
        username = self.username(token)
        if username is None:
            raise ApiError(401, "bad_token", "the Hugging Face Hub refused this token")
        return signed_in(username)

    def username(self, token: str) -> str | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached and cached[0] > now:
            return cached[1]
        try:
            name = HfApi().whoami(token=token).get("name")
        except HfHubHTTPError as exc:
            if exc.response is None or exc.response.status_code not in (401, 403):
                raise _hub_unavailable() from None
            name = None
        except Exception as exc:  # the Hub unreachable: not the visitor's fault, and not a reason to let them in
            log.warning("whoami failed: %s", type(exc).__name__)
            raise _hub_unavailable() from None
        name = name if isinstance(name, str) and name else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + (WHOAMI_TTL_S if name else REFUSED_TTL_S), name)
        return name


def _hub_unavailable() -> ApiError:
    message = "the Hugging Face Hub could not check the token; try again in 30 s"
    return ApiError(503, "hub_unavailable", message, retry_after=30)
