"""Our Pyramid Flow against the public reference's own numbers, stored in the repo: on every run.

tests/data/pyramid_reference.npz holds what github.com/jy0205/Pyramid-Flow (at the commit in
tests/pyramid_reference.py) computes on the tiny checkpoint: its scheduler's timesteps and sigmas,
and the latents and decoded frames of a 3-latent-frame generation. scripts/pyramid_reference.py
regenerates them from a checkout; test_pyramid_reference.py compares live where one is at hand.
A wrong renoising between stages (beta halved), a wrong stage range or a wrong step changes the
latents far beyond the 1e-4 allowed (ours and the reference differ by 8e-6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="model dependencies are not installed (requirements-models.txt)")

from backends.pyramid_flow.pipeline import PyramidFlowPipeline  # noqa: E402
from backends.pyramid_flow.scheduler import PyramidFlowScheduler  # noqa: E402
from tests.pyramid_reference import (  # noqa: E402
    FIRST_STEPS,
    GENERATION,
    PROMPT,
    SCHEDULE_STEPS,
    SCHEDULER,
    SEED,
    STORED,
    TEMP,
    VIDEO_STEPS,
    frame_means,
)
from tests.tiny_pyramid import FOLDERS, save_tiny_pyramid  # noqa: E402

pytestmark = pytest.mark.pyramid


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(STORED) as stored:
        return {name: stored[name] for name in stored.files}


def test_scheduler_matches_the_reference(reference: dict[str, np.ndarray]) -> None:
    ours = PyramidFlowScheduler()
    for stage in range(SCHEDULER["stages"]):
        for steps in SCHEDULE_STEPS:
            schedule = ours.schedule(steps, stage)
            np.testing.assert_allclose(schedule.timesteps.numpy(), reference[f"timesteps_{stage}_{steps}"], atol=1e-4)
            np.testing.assert_allclose(schedule.sigmas.numpy(), reference[f"sigmas_{stage}_{steps}"], atol=1e-7)


def test_generation_matches_the_reference(reference: dict[str, np.ndarray], tmp_path: Path) -> None:
    pipe = PyramidFlowPipeline.from_pretrained(str(save_tiny_pyramid(tmp_path) / FOLDERS["384p"]))
    latents = pipe(
        prompt=PROMPT, num_frames=8 * (TEMP - 1) + 1, num_inference_steps=FIRST_STEPS,
        video_num_inference_steps=VIDEO_STEPS, generator=torch.Generator().manual_seed(SEED), output_type="latent",
        **GENERATION,
    ).frames  # fmt: skip
    # The tiny weights come from torch's seeded initialisation: another torch may draw others.
    stored_with = str(reference["torch"])
    stale = (
        ""
        if stored_with == torch.__version__
        else f"stored with torch {stored_with}, running {torch.__version__}: run scripts/pyramid_reference.py again"
    )
    assert latents.shape == reference["latents"].shape
    np.testing.assert_allclose(latents.numpy(), reference["latents"], rtol=1e-4, atol=1e-4, err_msg=stale)
    # The reference truncates 127.5 * x + 127.5 to bytes; ours keeps x / 2 + 0.5 as floats in [0, 1].
    frames = pipe.decode_latents(latents)[0]
    as_bytes = np.floor(np.clip(frames * 255.0, 0, 255) + 1e-4)
    np.testing.assert_allclose(frame_means(as_bytes), reference["frame_means"], atol=0.05, err_msg=stale)
