"""One real generation per provider; each runs only when its key is set (they cost money).

`HF_TOKEN=... FAL_KEY=... pytest -m live tests/test_hosted_live.py`; OPENAI_VIDEOS_BASE_URL
must be set with OPENAI_VIDEOS_API_KEY. The models are the backends' defaults unless
DAILIES_LIVE_<PROVIDER>_MODEL names another (e.g. DAILIES_LIVE_FAL_MODEL=fal-ai/ltx-video).
"""

from __future__ import annotations

import os

import pytest

import backends
from dailies.contract.settings import Settings
from dailies.contract.spec import JobSpec

pytestmark = [pytest.mark.hosted, pytest.mark.live]


@pytest.mark.parametrize(
    "provider, backend, env",
    [
        ("hf", "hf-inference", "HF_TOKEN"),
        ("openai", "openai-videos", "OPENAI_VIDEOS_API_KEY"),
        ("fal", "fal", "FAL_KEY"),
        ("replicate", "replicate", "REPLICATE_API_TOKEN"),
    ],
)
def test_live_generation(provider: str, backend: str, env: str) -> None:
    if not os.environ.get(env):
        pytest.skip(f"{env} is not set")
    settings = Settings.from_env()
    chosen = backends.get(backend, settings)
    assert chosen.availability().usable, chosen.availability().reason
    params = {p.name: p.default for p in chosen.params}
    if model := os.environ.get(f"DAILIES_LIVE_{provider.upper()}_MODEL"):
        params["custom_model" if "custom_model" in params else "model"] = model
    request = JobSpec(
        id="live",
        backend=backend,
        prompt="a paper boat drifting on a puddle, overcast light",
        negative_prompt="",
        seed=None if not chosen.seeded else 7,
        width=chosen.size.default[0],
        height=chosen.size.default[1],
        num_frames=chosen.frames.default,
        fps=chosen.fps,
        params=params,
    )
    video = chosen.generate(request, lambda fraction, message: None, lambda: False)
    assert video.num_frames > 1 and video.mp4 and video.poster[:2] == b"\xff\xd8"
