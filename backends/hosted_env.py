"""The environment variables of each hosted backend: its key, and the one that moves its base URL.

Written once, here: a hosted backend takes its own pair (`key_env`, `url_env`) and Settings
reads exactly these variables, keys out of its repr. Settings needs them before any backend
exists and sits below the backends, so it reads this module lazily, and this module imports nothing.
"""

from __future__ import annotations

from typing import NamedTuple


class HostedEnv(NamedTuple):
    key: str  # holds the provider's key or token
    url: str | None = None  # a base URL instead of the provider's own (a gateway, a test server)


HF_INFERENCE = HostedEnv("HF_TOKEN")
OPENAI_VIDEOS = HostedEnv("OPENAI_VIDEOS_API_KEY", "OPENAI_VIDEOS_BASE_URL")
FAL = HostedEnv("FAL_KEY", "FAL_QUEUE_URL")
REPLICATE = HostedEnv("REPLICATE_API_TOKEN", "REPLICATE_API_URL")
HOSTED_ENV = (HF_INFERENCE, OPENAI_VIDEOS, FAL, REPLICATE)
