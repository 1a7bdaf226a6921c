"""Settings read from the environment, in one place (every variable is listed in the README)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def _hops(raw: str) -> int:
    """DAILIES_TRUST_FORWARDED: 0 or 1 (one proxy, as on Spaces), or the number of proxies in a chain."""
    if not raw.strip().isdigit() or int(raw) > 16:
        raise SystemExit(f"DAILIES_TRUST_FORWARDED must be a number of proxies from 0 to 16, got {raw!r}")
    return int(raw)


def _public_url(env: Mapping[str, str]) -> str:
    """DAILIES_PUBLIC_URL, else the Space's own host (Spaces set SPACE_HOST), else this machine."""
    url = env.get("DAILIES_PUBLIC_URL", "").strip()
    if not url and env.get("SPACE_HOST"):
        url = f"https://{env['SPACE_HOST'].strip()}"
    if not url:
        url = f"http://localhost:{_int(env, 'GRADIO_SERVER_PORT', 7860)}"
    if not url.startswith(("https://", "http://")) or any(c in url for c in "\"'<> "):
        raise SystemExit(f"DAILIES_PUBLIC_URL must be an http(s) address, got {url!r}")
    return url.rstrip("/") + "/"


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from None


def _names(env: Mapping[str, str], name: str) -> frozenset[str]:
    """A comma-separated list, compared without case (Hub usernames are case-insensitive)."""
    return frozenset(n.strip().lower() for n in env.get(name, "").split(",") if n.strip())


MEMORY_MODES = ("auto", "gpu", "model-offload", "sequential-offload")
MODEL_PREFIX = "DAILIES_MODEL_"  # DAILIES_MODEL_<BACKEND>[_I2V]: weights instead of the published repo


def model_env_name(backend: str, mode: str = "text-to-video") -> str:
    """DAILIES_MODEL_<BACKEND> (and ..._I2V for separate image-to-video weights)."""
    base = MODEL_PREFIX + backend.upper().replace("-", "_")
    return base + "_I2V" if mode == "image-to-video" else base


def _memory_gb(env: Mapping[str, str]) -> float | None:
    raw = env.get("DAILIES_MODEL_MEMORY_GB", "").strip()
    if not raw:
        return None
    value = _float(env, "DAILIES_MODEL_MEMORY_GB", 0.0)
    if not value > 0:
        raise SystemExit(f"DAILIES_MODEL_MEMORY_GB must be a positive number of GB, got {raw!r}")
    return value


SPEED_FEATURES = ("compile", "attention", "step_cache", "fp8")  # see dailies/worker/speed.py
SAME_PICTURE = ("compile", "attention")  # on by default on a GPU: they do not change the picture
SPEED_PREFIX = "DAILIES_SPEED"  # DAILIES_SPEED, DAILIES_SPEED_<BACKEND>, DAILIES_SPEED_<BACKEND>_<CHECKPOINT>


def speed_env_name(backend: str = "", checkpoint: str = "") -> str:
    """DAILIES_SPEED, or ..._<BACKEND>, or ..._<BACKEND>_<CHECKPOINT> (e.g. DAILIES_SPEED_WAN_2_1_14B)."""
    parts = [SPEED_PREFIX, *(re.sub(r"[^A-Z0-9]+", "_", p.upper()).strip("_") for p in (backend, checkpoint) if p)]
    return "_".join(parts)


def _speed(name: str, raw: str) -> tuple[str, ...]:
    features = tuple(f.strip() for f in raw.split(",") if f.strip() and f.strip() != "none")
    unknown = [f for f in features if f not in SPEED_FEATURES]
    if unknown:
        raise SystemExit(f"{name}: unknown speed feature {unknown[0]!r}; known: {', '.join(SPEED_FEATURES)}, none")
    if {"compile", "fp8"} <= set(features):
        # Measured by bench.gpu: Dynamo cannot trace the fp8 casting hooks (diffusers 0.42, torch 2.13).
        raise SystemExit(f"{name}: compile and fp8 do not work together; choose one")
    return features


@dataclass(frozen=True)
class Settings:
    redis_url: str | None
    data_dir: Path
    server_name: str
    server_port: int
    device: str
    preview_pace: float
    job_timeout: int
    heartbeat_s: float
    result_max_bytes: int
    result_ttl: int
    user_max_active: int
    queue_max: int
    # How many proxies in front of the app append to X-Forwarded-For (0: trust none of it).
    forwarded_hops: int
    # The app's public address (share pages, link previews): never the request's own Host header.
    public_url: str
    hf_token: str | None = field(repr=False)
    hf_dataset_repo: str | None
    commit_every: float
    # Hosted backends. Keys stay out of repr so a logged Settings never shows them.
    hosted_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    hosted_urls: tuple[tuple[str, str], ...] = ()
    hosted_allow_private: bool = False
    hosted_max_bytes: int = 200 * 1024 * 1024
    hosted_retries: int = 6
    hf_bill_to: str | None = None
    # Limits per visitor: anonymous (by address) and signed in (by Hugging Face username).
    user_max_per_hour: int = 30
    signed_in_max_active: int = 5
    signed_in_max_per_hour: int = 120
    exempt_users: frozenset[str] = frozenset()
    # Hub usernames who may list reports and hide or remove generations (with the exempt users).
    owners: frozenset[str] = frozenset()
    reports_per_hour: int = 10  # reports per visitor in any hour
    # Backend names (or "hosted": every hosted backend) that only signed-in visitors may use.
    sign_in_required: frozenset[str] = frozenset()
    # Spaces set OAUTH_CLIENT_ID when the front matter says `hf_oauth: true`: the page can sign in.
    oauth: bool = False
    # Local models: (DAILIES_MODEL_<BACKEND>[_I2V], weights) pairs, the offload mode, the resident budget.
    model_overrides: tuple[tuple[str, str], ...] = ()
    memory_mode: str = "auto"
    model_memory_gb: float | None = None  # None: 80% of free memory
    # Speed features per DAILIES_SPEED[_<BACKEND>[_<CHECKPOINT>]] name; unset everywhere: SAME_PICTURE on a GPU.
    speed: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # A request's line and headers must be in this long after the connection opens (slowloris).
    header_timeout_s: float = 20.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        # The hosted backends name their variables there, in a module that imports nothing; read here, not at
        # the top, because the backends import this module.
        from backends.hosted_env import HOSTED_ENV

        env = os.environ if env is None else env
        device = env.get("DAILIES_DEVICE", "auto").strip().lower() or "auto"
        if device not in ("auto", "cuda", "cpu"):
            raise SystemExit(f"DAILIES_DEVICE must be auto, cuda or cpu, got {device!r}")
        memory_mode = env.get("DAILIES_MEMORY_MODE", "").strip() or "auto"
        if memory_mode not in MEMORY_MODES:
            raise SystemExit(f"DAILIES_MEMORY_MODE must be one of {', '.join(MEMORY_MODES)}, got {memory_mode!r}")
        return cls(
            redis_url=env.get("REDIS_URL") or None,
            data_dir=Path(env.get("DAILIES_DATA") or "data").resolve(),
            server_name=env.get("GRADIO_SERVER_NAME") or "127.0.0.1",
            server_port=_int(env, "GRADIO_SERVER_PORT", 7860),
            device=device,
            preview_pace=max(0.0, _float(env, "DAILIES_PREVIEW_PACE", 0.0)),
            job_timeout=_int(env, "DAILIES_JOB_TIMEOUT", 1800),
            heartbeat_s=_float(env, "DAILIES_HEARTBEAT_S", 5.0),
            result_max_bytes=_int(env, "DAILIES_RESULT_MAX_MB", 200) * 1024 * 1024,
            result_ttl=_int(env, "DAILIES_RESULT_TTL", 86400),
            user_max_active=_int(env, "DAILIES_USER_MAX_ACTIVE", 3),
            queue_max=_int(env, "DAILIES_QUEUE_MAX", 200),
            # Behind the Spaces proxy (one hop) the client address is the entry that proxy appended.
            forwarded_hops=_hops(env.get("DAILIES_TRUST_FORWARDED", "1" if env.get("SPACE_ID") else "0")),
            public_url=_public_url(env),
            header_timeout_s=max(0.1, _float(env, "DAILIES_HEADER_TIMEOUT_S", 20.0)),
            hf_token=env.get("HF_TOKEN") or None,
            hf_dataset_repo=env.get("HF_DATASET_REPO") or None,
            commit_every=_float(env, "DAILIES_COMMIT_EVERY", 60.0),
            hosted_keys=tuple((v.key, env[v.key]) for v in HOSTED_ENV if env.get(v.key)),
            hosted_urls=tuple((v.url, env[v.url].rstrip("/")) for v in HOSTED_ENV if v.url and env.get(v.url)),
            # Tests (and self-hosted gateways on a LAN) need plain http and private addresses.
            hosted_allow_private=env.get("DAILIES_HOSTED_ALLOW_PRIVATE", "0") == "1",
            hosted_max_bytes=_int(env, "DAILIES_HOSTED_MAX_MB", 200) * 1024 * 1024,
            hosted_retries=_int(env, "DAILIES_HOSTED_RETRIES", 6),
            hf_bill_to=env.get("DAILIES_HF_BILL_TO") or None,
            user_max_per_hour=_int(env, "DAILIES_USER_MAX_PER_HOUR", 30),
            signed_in_max_active=_int(env, "DAILIES_SIGNED_IN_MAX_ACTIVE", 5),
            signed_in_max_per_hour=_int(env, "DAILIES_SIGNED_IN_MAX_PER_HOUR", 120),
            exempt_users=_names(env, "DAILIES_EXEMPT_USERS"),
            owners=_names(env, "DAILIES_OWNERS"),
            reports_per_hour=_int(env, "DAILIES_REPORTS_PER_HOUR", 10),
            sign_in_required=_names(env, "DAILIES_SIGN_IN_REQUIRED"),
            oauth=bool(env.get("OAUTH_CLIENT_ID")),
            model_overrides=tuple(
                sorted(
                    (name, value.strip())
                    for name, value in env.items()
                    if name.startswith(MODEL_PREFIX) and name != "DAILIES_MODEL_MEMORY_GB" and value.strip()
                )
            ),
            memory_mode=memory_mode,
            model_memory_gb=_memory_gb(env),
            speed=tuple(
                sorted((name, _speed(name, value)) for name, value in env.items() if name.startswith(SPEED_PREFIX))
            ),
        )

    def is_owner(self, username: str | None) -> bool:
        """Whether a signed-in Hub user may take generations down."""
        return username is not None and username.lower() in self.owners | self.exempt_users

    def requires_sign_in(self, backend_name: str, hosted: bool) -> bool:
        return backend_name in self.sign_in_required or (hosted and "hosted" in self.sign_in_required)

    def speed_for(self, backend: str, checkpoint: str, device: str) -> tuple[str, ...]:
        """The speed features for one checkpoint: its own setting, else its backend's, else DAILIES_SPEED."""
        chosen = dict(self.speed)
        for name in (speed_env_name(backend, checkpoint), speed_env_name(backend), speed_env_name()):
            if name in chosen:
                return chosen[name]
        return SAME_PICTURE if device == "cuda" else ()

    def hosted_key(self, name: str) -> str | None:
        return dict(self.hosted_keys).get(name)

    def hosted_url(self, name: str, default: str | None = None) -> str | None:
        return dict(self.hosted_urls).get(name, default)

    @property
    def dataset_dir(self) -> Path:
        return self.data_dir / "dataset"

    @property
    def index_path(self) -> Path:
        return self.data_dir / "index.sqlite"
