"""`ltx-video`: Lightricks' LTX-Video 0.9.x (8k+1 frames, sides /32, 24-30 fps) via diffusers."""

from __future__ import annotations

from typing import Any

from backends.base import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, FrameRule, SizeRule
from backends.diffusers_common import SAME_WEIGHTS, DiffusersBackend, Variant, model_params
from dailies.contract.spec import JobSpec


class LTXVideoBackend(DiffusersBackend):
    name = "ltx-video"
    display_name = "LTX-Video"
    description = (
        "Lightricks' open LTX-Video 0.9.x: fast, 8k+1 frames up to 257, sides a multiple of 32. "
        "The distilled checkpoint runs in a few steps at guidance 1. Text-to-video and image-to-video."
    )
    modes = frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO})
    pipeline = "LTXPipeline"
    i2v_pipeline = "LTXImageToVideoPipeline"
    variants = (
        Variant("0.9.1", "Lightricks/LTX-Video-0.9.1", i2v=SAME_WEIGHTS, steps=50, guidance=3.0),
        Variant("0.9.5", "Lightricks/LTX-Video-0.9.5", i2v=SAME_WEIGHTS, steps=40, guidance=3.0),
        Variant("0.9.7-distilled", "Lightricks/LTX-Video-0.9.7-distilled", i2v=SAME_WEIGHTS, steps=8, guidance=1.0),
    )
    frames = FrameRule(step=8, offset=1, minimum=9, maximum=257, default=161)
    size = SizeRule(multiple=32, minimum=64, maximum=1280, default=(704, 480), recommended_min=256)
    fps = 24
    fps_range = (24, 30)
    params = model_params(variants)

    def call_args(self, request: JobSpec, variant: Variant) -> dict[str, Any]:
        # The model is conditioned on the frame rate; 0.9.1+ decode with a little noise (diffusers' LTX docs).
        decode_timestep = 0.05 if "distilled" in variant.name else 0.03
        return {"frame_rate": request.fps, "decode_timestep": decode_timestep, "decode_noise_scale": 0.025}
