"""`cogvideox`: CogVideoX 2B / 5B (720x480, 49 frames, 8 fps) and 1.5 5B (1360x768, 16 fps) via diffusers."""

from __future__ import annotations

from backends.base import IMAGE_TO_VIDEO, TEXT_TO_VIDEO, FrameRule, SizeRule
from backends.diffusers_common import DiffusersBackend, Variant, model_params


class CogVideoXBackend(DiffusersBackend):
    name = "cogvideox"
    display_name = "CogVideoX"
    description = (
        "THUDM's open CogVideoX: 2B and 5B at 720x480, 49 frames, 8 fps; 1.5 5B at 1360x768 and 16 fps. "
        "Text-to-video, and image-to-video with the 5B models."
    )
    modes = frozenset({TEXT_TO_VIDEO, IMAGE_TO_VIDEO})
    pipeline = "CogVideoXPipeline"
    i2v_pipeline = "CogVideoXImageToVideoPipeline"
    variants = (
        Variant("5b", "THUDM/CogVideoX-5b", i2v="THUDM/CogVideoX-5b-I2V", dtype="bfloat16", steps=50, guidance=6.0),
        Variant("2b", "THUDM/CogVideoX-2b", dtype="float16", steps=50, guidance=6.0),
        Variant(
            "1.5-5b", "THUDM/CogVideoX1.5-5B", i2v="THUDM/CogVideoX1.5-5B-I2V", dtype="bfloat16", steps=50, guidance=6.0
        ),
    )
    # 4k+1 frames (49 for 2B/5B; 81 or 161 for 1.5); latent patches of 2 on an 8x VAE: sides /16.
    frames = FrameRule(step=4, offset=1, minimum=5, maximum=161, default=49)
    size = SizeRule(multiple=16, minimum=64, maximum=1360, default=(720, 480), recommended_min=480)
    fps = 8
    fps_range = (8, 16)  # 8 for 2B/5B, 16 for 1.5
    params = model_params(variants)
