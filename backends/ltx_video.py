"""`ltx-video`: Lightricks' LTX-Video 0.9.x (8k+1 frames, sides /32, 24-30 fps) via diffusers."""

from __future__ import annotations

from typing import Any

from backends.base import SAME_WEIGHTS, Checkpoint, FrameRule, GpuCost, SizeRule
from backends.local_model import LocalModelBackend, model_params
from dailies.contract.spec import JobSpec

FAMILY = Checkpoint(
    "",
    frames=FrameRule(step=8, offset=1, minimum=9, maximum=257, default=161),
    size=SizeRule(multiple=32, minimum=64, maximum=1280, default=(704, 480), recommended_min=256),
    fps=24,
    fps_range=(24, 30),
    i2v=SAME_WEIGHTS,
    steps=50,
    guidance=3.0,
)


class LTXVideoBackend(LocalModelBackend):
    name = "ltx-video"
    display_name = "LTX-Video"
    description = (
        "Lightricks' open LTX-Video 0.9.x: fast, 8k+1 frames up to 257, sides a multiple of 32. "
        "The distilled checkpoint runs in a few steps at guidance 1. Text-to-video and image-to-video."
    )
    pipeline = "LTXPipeline"
    i2v_pipeline = "LTXImageToVideoPipeline"
    checkpoints = (
        FAMILY.but(
            "0.9.1", gpu=GpuCost(0.5, 704 * 480 * 161, 20), label="LTX-Video 0.9.1", repo="Lightricks/LTX-Video-0.9.1"
        ),
        FAMILY.but(
            "0.9.5",
            gpu=GpuCost(0.5, 704 * 480 * 161, 20),
            label="LTX-Video 0.9.5",
            repo="Lightricks/LTX-Video-0.9.5",
            steps=40,
        ),
        FAMILY.but(
            "0.9.7-distilled",
            gpu=GpuCost(1.5, 704 * 480 * 161, 35),
            label="LTX-Video 0.9.7 distilled",
            repo="Lightricks/LTX-Video-0.9.7-distilled",
            steps=8,
            guidance=1.0,
        ),
    )
    params = model_params(checkpoints)

    def call_args(self, request: JobSpec, checkpoint: Checkpoint) -> dict[str, Any]:
        # The model is conditioned on the frame rate; 0.9.1+ decode with a little noise (diffusers' LTX docs).
        decode_timestep = 0.05 if "distilled" in checkpoint.name else 0.03
        return {"frame_rate": request.fps, "decode_timestep": decode_timestep, "decode_noise_scale": 0.025}
