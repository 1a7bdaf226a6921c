"""`wan`: Wan 2.1 / 2.2 (832x480, 4k+1 frames, 16 fps; VAE in float32) via diffusers."""

from __future__ import annotations

from backends.base import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, FrameRule, SizeRule
from backends.diffusers_common import SAME_WEIGHTS, DiffusersBackend, Variant, model_params


class WanBackend(DiffusersBackend):
    name = "wan"
    display_name = "Wan"
    description = (
        "Alibaba's open Wan 2.1 (1.3B, 14B) and 2.2 (TI2V 5B, A14B) at 832x480 and 16 fps (2.2 5B: 24 fps). "
        "Text-to-video, and image-to-video with the 14B and 2.2 models."
    )
    modes = frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO})
    pipeline = "WanPipeline"
    i2v_pipeline = "WanImageToVideoPipeline"
    variants = (
        Variant("2.1-1.3b", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", steps=50, guidance=5.0),
        Variant(
            "2.1-14b",
            "Wan-AI/Wan2.1-T2V-14B-Diffusers",
            i2v="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
            steps=50,
            guidance=5.0,
        ),
        Variant("2.2-5b", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", i2v=SAME_WEIGHTS, steps=50, guidance=5.0),
        Variant(
            "2.2-a14b",
            "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            i2v="Wan-AI/Wan2.2-I2V-A14B-Diffusers",
            steps=40,
            guidance=4.0,
        ),
    )
    vae_fp32 = True
    frames = FrameRule(step=4, offset=1, minimum=5, maximum=121, default=81)
    size = SizeRule(multiple=16, minimum=64, maximum=1280, default=(832, 480), recommended_min=480)
    fps = 16
    fps_range = (16, 24)  # 24 for 2.2 5B
    params = model_params(variants)
