"""`cogvideox`: CogVideoX 2B / 5B (720x480, 49 frames, 8 fps) and 1.5 5B (1360x768, 81 or 161 frames, 16 fps)."""

from __future__ import annotations

from backends.base import Checkpoint, FrameRule, GpuCost, SizeRule
from backends.local_model import LocalModelBackend, model_params

# 2B and 5B: 4k+1 frames up to the 49 they were trained on (5 decodes to 8: 9 is the least);
# latent patches of 2 on an 8x VAE: sides /16.
FAMILY = Checkpoint(
    "",
    frames=FrameRule(step=4, offset=1, minimum=9, maximum=49, default=49),
    size=SizeRule(multiple=16, minimum=64, maximum=720, default=(720, 480), recommended_min=480),
    fps=8,
    steps=50,
    guidance=6.0,
)


class CogVideoXBackend(LocalModelBackend):
    name = "cogvideox"
    display_name = "CogVideoX"
    description = (
        "THUDM's open CogVideoX: 2B and 5B at 720x480, 49 frames, 8 fps; 1.5 5B at 1360x768, 81 or 161 frames "
        "and 16 fps. Text-to-video, and image-to-video with the 5B models."
    )
    pipeline = "CogVideoXPipeline"
    i2v_pipeline = "CogVideoXImageToVideoPipeline"
    checkpoints = (
        FAMILY.but(
            "5b",
            gpu=GpuCost(2.0, 720 * 480 * 49, 35),
            label="CogVideoX 5B",
            repo="THUDM/CogVideoX-5b",
            i2v="THUDM/CogVideoX-5b-I2V",
        ),
        FAMILY.but(
            "2b", gpu=GpuCost(1.0, 720 * 480 * 49, 25), label="CogVideoX 2B", repo="THUDM/CogVideoX-2b", dtype="float16"
        ),
        # 16k+1 frames with a temporal latent patch of 2: the model card's 5 s (81) and 10 s (161).
        FAMILY.but(
            "1.5-5b",
            gpu=GpuCost(12.0, 1360 * 768 * 81, 35, "xlarge"),
            label="CogVideoX 1.5 5B",
            repo="THUDM/CogVideoX1.5-5B",
            i2v="THUDM/CogVideoX1.5-5B-I2V",
            frames=FrameRule(step=80, offset=1, minimum=81, maximum=161, default=81),
            size=SizeRule(multiple=16, minimum=64, maximum=1360, default=(1360, 768), recommended_min=480),
            fps=16,
        ),
    )
    params = model_params(checkpoints)
