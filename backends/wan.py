"""`wan`: Wan 2.1 (832x480, 81 frames, 16 fps) and 2.2 (TI2V 5B: 1280x704, 121 frames, 24 fps) via diffusers."""

from __future__ import annotations

from backends.base import SAME_WEIGHTS, Checkpoint, FrameRule, GpuCost, SizeRule
from backends.local_model import LocalModelBackend, model_params

FAMILY = Checkpoint(
    "",
    frames=FrameRule(step=4, offset=1, minimum=5, maximum=81, default=81),
    size=SizeRule(multiple=16, minimum=64, maximum=1280, default=(832, 480), recommended_min=480),
    fps=16,
    steps=50,
    guidance=5.0,
)


class WanBackend(LocalModelBackend):
    name = "wan"
    display_name = "Wan"
    description = (
        "Alibaba's open Wan 2.1 (1.3B, 14B) at 832x480, 81 frames, 16 fps and 2.2 (TI2V 5B at 1280x704, "
        "121 frames, 24 fps; A14B). Text-to-video, and image-to-video with the 14B and 2.2 models."
    )
    pipeline = "WanPipeline"
    i2v_pipeline = "WanImageToVideoPipeline"
    vae_fp32 = True
    checkpoints = (
        FAMILY.but(
            "2.1-1.3b",
            gpu=GpuCost(1.5, 832 * 480 * 81, 20),
            label="Wan 2.1 1.3B",
            repo="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        ),
        FAMILY.but(
            "2.1-14b",
            gpu=GpuCost(9.0, 832 * 480 * 81, 60, "xlarge"),
            label="Wan 2.1 14B",
            repo="Wan-AI/Wan2.1-T2V-14B-Diffusers",
            i2v="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        ),
        # One model for both modes; its VAE compresses 16x and the transformer patches 2x: sides /32.
        FAMILY.but(
            "2.2-5b",
            gpu=GpuCost(4.0, 1280 * 704 * 121, 30),
            label="Wan 2.2 TI2V 5B",
            repo="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            i2v=SAME_WEIGHTS,
            frames=FrameRule(step=4, offset=1, minimum=5, maximum=121, default=121),
            size=SizeRule(multiple=32, minimum=64, maximum=1280, default=(1280, 704), recommended_min=480),
            fps=24,
        ),
        FAMILY.but(
            "2.2-a14b",
            gpu=GpuCost(9.0, 832 * 480 * 81, 90, "xlarge"),
            label="Wan 2.2 A14B",
            repo="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
            i2v="Wan-AI/Wan2.2-I2V-A14B-Diffusers",
            steps=40,
            guidance=4.0,
        ),
    )
    params = model_params(checkpoints)
