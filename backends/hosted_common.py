"""What every hosted backend shares: the submit/poll protocol, HTTP error mapping, safe download.

A hosted backend does not make the video itself: it asks a provider. A `PolledBackend` (a
provider with a job API) `submit`s once and returns the remote state (ids and urls, never a
key), which the worker stores with the job before any wait; `poll` answers `Pending` (ask again
after `after_s`) or the finished `Video`. Each worker's dispatcher enqueues a poll step when it
is due (dailies/worker/polling.py), so a worker never sleeps on a provider; hf-inference, with
no job API, waits in `generate` instead. Provider answers map onto three outcomes: `RetryLater`
(429, 5xx, timeouts), `Misconfigured` (401/403: the key was refused) and `GenerationError` (any
other refusal, final, with the provider's reason).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import av
import httpx

from backends.base import (
    Availability,
    Backend,
    CancelCheck,
    Cancelled,
    Checkpoint,
    FrameRule,
    GenerationError,
    Param,
    Progress,
    SizeRule,
    Video,
)
from dailies.contract.media import first_frame, poster_jpeg, probe_mp4
from dailies.contract.retry import retry_after
from dailies.contract.spec import JobSpec

TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MAX_REDIRECTS = 3
PLAYABLE_CODECS = ("h264", "hevc", "vp9", "av1")  # what browsers play from an MP4/WebM


@dataclass(frozen=True)
class Pending:
    """Not finished yet: ask again after `after_s` seconds."""

    after_s: float
    progress: float | None = None
    position: int | None = None
    message: str = ""


class RetryLater(Exception):
    """A passing failure (429, 5xx, timeout, cut-off download): try the same step again later."""

    def __init__(self, reason: str, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.after_s = reason, after_s


class Misconfigured(GenerationError):
    """The provider refused our key (401/403): no job on this backend can succeed until it is fixed."""


@dataclass(frozen=True)
class PatternParam(Param):
    """A free-text parameter checked against a regular expression (e.g. an owner/name model id)."""

    pattern: str = ""

    def check(self, value: Any) -> Any:
        value = super().check(value)
        if value and not re.fullmatch(self.pattern, value):
            raise ValueError(f"must look like {self.help or self.pattern}")
        return value


MODEL_ID = r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}"


def model_params(known: tuple[str, ...], pattern: str = MODEL_ID, example: str = "owner/name") -> tuple[Param, Param]:
    """A model picked from the known list, and any other one by id (which wins when given)."""
    return (
        Param("model", str, known[0], choices=known, label="Model"),
        PatternParam("custom_model", str, "", label="Other model", help=example, pattern=pattern),
    )


def chosen_model(params: dict[str, Any]) -> str:
    return params.get("custom_model") or params["model"]


REMOTE_ID = re.compile(r"[\w-]{1,100}")  # a provider's job id, checked before it goes into a URL


def prompt_input(request: JobSpec) -> dict[str, Any]:
    """What every model behind a queue-style provider takes: the prompt, the seed, a negative prompt."""
    payload: dict[str, Any] = {"prompt": request.prompt, "seed": request.seed}
    if request.negative_prompt:
        payload["negative_prompt"] = request.negative_prompt
    return payload


TQDM = re.compile(r"(\d{1,3})%\|")


def progress_in_logs(logs: str) -> float | None:
    """The last tqdm percentage in a model's log (how Replicate and fal models report progress)."""
    found = TQDM.findall(logs[-4000:])
    return min(int(found[-1]), 100) / 100 if found else None


def provider_reason(response: httpx.Response) -> str:
    """The provider's own explanation of a refusal, from the usual JSON shapes, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or f"HTTP {response.status_code}"
    return reason_in(body) or f"HTTP {response.status_code}"


def reason_in(body: Any) -> str:
    if isinstance(body, str):
        return body[:300]
    if isinstance(body, list):
        return "; ".join(filter(None, (reason_in(item) for item in body)))[:300]
    if isinstance(body, dict):
        for key in ("error", "detail", "message", "msg", "title"):
            if body.get(key):
                return reason_in(body[key])
    return ""


class HostedBackend(Backend):
    """A provider's API reached with a key from the worker's environment."""

    kind = "hosted"
    provider: ClassVar[str]  # the provider's name in messages
    key_env: ClassVar[str]
    credential: ClassVar[str] = "API key"  # what `key_env` holds, in messages
    url_env: ClassVar[str | None] = None
    default_url: ClassVar[str | None] = None
    # Providers publish no per-model rules we could check, so one set covers whatever `model` names.
    checkpoints = (
        Checkpoint(
            "any",
            frames=FrameRule(step=1, offset=0, minimum=1, maximum=1000, default=121),
            size=SizeRule(multiple=16, minimum=256, maximum=1920, default=(1280, 720)),
            fps=24,
            label="any model",
        ),
    )
    _client: httpx.Client | None = None

    @property
    def key(self) -> str:
        return self.settings.hosted_key(self.key_env) or ""

    @property
    def base_url(self) -> str:
        return (self.settings.hosted_url(self.url_env, self.default_url) if self.url_env else self.default_url) or ""

    def availability(self) -> Availability:
        missing = [self.key_env] if not self.key else []
        if not self.base_url and self.url_env:
            missing.append(self.url_env)
        if missing:
            return Availability(False, f"set {' and '.join(missing)} in the worker's environment")
        return Availability(True)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def refusal(self, response: httpx.Response) -> Exception | None:
        """The provider's answer as one of the three outcomes; None when it is a success."""
        status = response.status_code
        if status == 429 or status >= 500:
            return RetryLater(f"{self.provider} answered HTTP {status}", retry_after(response.headers))
        if status in (401, 403):
            return Misconfigured(
                f"{self.provider} refused the {self.credential} (HTTP {status}: {provider_reason(response)}); "
                f"check {self.key_env} on the worker"
            )
        if status >= 400:
            return GenerationError(f"{self.provider} refused the job: {provider_reason(response)}")
        return None


class PolledBackend(HostedBackend):
    """A provider with a job API: submit once, then poll; the runner never sleeps on it."""

    poll_every: ClassVar[float] = 3.0

    @abstractmethod
    def submit(self, request: JobSpec) -> dict[str, Any]:
        """Send the job; the remote state to store (ids and urls only, no key)."""

    @abstractmethod
    def poll(self, state: dict[str, Any]) -> Pending | Video:
        """Ask once how the remote job is doing; download and check the video when it is done."""

    def cancel(self, state: dict[str, Any]) -> None:
        """Ask the provider to stop the remote job (best effort)."""

    def running(self, logs: str) -> Pending:
        """Still running: the progress from the model's tqdm log, its last line as the message."""
        last = next((line.strip() for line in reversed(logs.splitlines()) if line.strip()), "")
        return Pending(self.poll_every, progress_in_logs(logs), message=last[:160] or f"running at {self.provider}")

    def generate(self, request: JobSpec, progress: Progress, cancelled: CancelCheck) -> Video:
        """Submit and poll in one call, sleeping between polls (for a caller with no queue: live tests)."""
        state = self.submit(request)
        while True:
            if cancelled():
                self.cancel(state)
                raise Cancelled()
            answer = self.poll(state)
            if isinstance(answer, Video):
                return answer
            progress(answer.progress or 0.0, answer.message)
            time.sleep(answer.after_s)

    def call(self, method: str, url: str, *, create: bool = False, **kwargs: Any) -> httpx.Response:
        """One request to the provider's API with our key, its failures mapped onto the three outcomes.

        A create that timed out after it was sent may have started a paid job, so it is not retried.
        """
        if self._client is None:
            self._client = httpx.Client(timeout=TIMEOUT)
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
        try:
            response = self._client.request(method, url, headers=headers, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise RetryLater(f"could not reach {self.provider} ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            if create:
                raise GenerationError(
                    f"{self.provider} did not answer the request ({type(exc).__name__}); it was not sent "
                    "again so that it is not paid twice"
                ) from None
            raise RetryLater(f"{self.provider} did not answer ({type(exc).__name__})") from None
        refused = self.refusal(response)
        if refused:
            raise refused
        return response

    def call_quietly(self, method: str, url: str) -> None:
        """A best-effort call (cancel, clean-up): if it fails our side is settled anyway."""
        try:
            self.call(method, url)
        except (RetryLater, GenerationError):
            pass

    def fetch_video(self, url: str, model: str, *, trusted: bool = False, **extra: Any) -> Video:
        """Download an output now (remote outputs expire) and keep it only if it is a playable video.

        `trusted`: the address is on the operator's configured base URL and needs our key; any
        other address came from the provider and gets no key, https only and no private hosts.
        """
        headers = self.auth_headers() if trusted else {}
        data = download(
            url, self.settings.hosted_max_bytes, headers, self.settings.hosted_allow_private, trusted_origin=trusted
        )
        return video_from_bytes(data, model, self.settings.hosted_max_bytes, **extra)


_downloads = httpx.Client(timeout=TIMEOUT, follow_redirects=False)


def download(
    url: str, max_bytes: int, headers: dict[str, str], allow_private: bool, *, trusted_origin: bool = False
) -> bytes:
    """GET a video, following at most MAX_REDIRECTS redirects. `trusted_origin`: the first address is
    the operator's own (it may be http or private); a redirect elsewhere is checked like any other."""
    home = _origin(url) if trusted_origin else None
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private or _origin(url) == home)
        try:
            with _downloads.stream("GET", url, headers=headers) as response:
                if response.is_redirect and "location" in response.headers:
                    url, headers = urljoin(url, response.headers["location"]), {}  # the key stays home
                    continue
                if response.status_code == 429 or response.status_code >= 500:
                    raise RetryLater(
                        f"the video download answered HTTP {response.status_code}", retry_after(response.headers)
                    )
                if response.status_code >= 400:
                    raise GenerationError(
                        f"the video could not be downloaded (HTTP {response.status_code}); remote outputs expire"
                    )
                if int(response.headers.get("content-length") or 0) > max_bytes:
                    raise GenerationError(too_large(int(response.headers["content-length"]), max_bytes))
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise GenerationError(too_large(len(data), max_bytes))
                return bytes(data)
        except httpx.TransportError as exc:
            raise RetryLater(f"the video download was cut off ({type(exc).__name__})") from None
    raise GenerationError("the video download was redirected too many times")


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def too_large(size: int, max_bytes: int) -> str:
    return f"the provider's video is over the {max_bytes // 2**20} MB limit ({size // 2**20}+ MB)"


def check_url(url: str, allow_private: bool) -> None:
    """Refuse plain http and addresses inside our network unless the operator allowed them."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (allow_private and parts.scheme == "http"):
        raise GenerationError(f"refused to download the video from a non-https address ({parts.scheme}:)")
    if not parts.hostname:
        raise GenerationError("the provider gave a video address with no host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise RetryLater(f"could not resolve {parts.hostname}") from None
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_global:
            raise GenerationError(f"refused to download the video from a private address ({parts.hostname})")


def video_from_bytes(data: bytes, model: str, max_bytes: int, **extra: Any) -> Video:
    """A Video from a provider's MP4 after checking it decodes, with its first frame as poster."""
    if len(data) > max_bytes:
        raise GenerationError(too_large(len(data), max_bytes))
    try:
        info = probe_mp4(data)
        if info.codec not in PLAYABLE_CODECS or info.num_frames < 1:
            raise ValueError(f"{info.codec or 'unknown'} with {info.num_frames} frames")
        poster = poster_jpeg(first_frame(data))
    except (ValueError, av.FFmpegError) as exc:
        raise GenerationError(f"the provider's output is not a playable video ({exc})") from None
    return Video(
        mp4=data,
        poster=poster,
        model=model,
        width=info.width,
        height=info.height,
        num_frames=info.num_frames,
        fps=max(1, round(info.fps)),
        extra={"codec": info.codec, **extra},
        has_audio=info.audio is not None,  # the provider's sound is kept as it came
    )
