"""`mochi`: Genmo's Mochi 1 (848x480, 6k+1 frames, 30 fps; the bf16 weights) via diffusers."""

from __future__ import annotations

from backends.base import FrameRule, SizeRule
from backends.diffusers_common import DiffusersBackend, Variant, model_params


class MochiBackend(DiffusersBackend):
    name = "mochi"
    display_name = "Mochi 1"
    description = "Genmo's open Mochi 1 at 848x480 and 30 fps, bf16 weights (about 22 GB). Text-to-video."
    pipeline = "MochiPipeline"
    variants = (
        Variant("1-preview", "genmo/mochi-1-preview", dtype="bfloat16", steps=64, guidance=4.5, weights_variant="bf16"),
    )
    frames = FrameRule(step=6, offset=1, minimum=7, maximum=163, default=85)
    size = SizeRule(multiple=16, minimum=64, maximum=848, default=(848, 480), recommended_min=480)
    fps = 30
    params = model_params(variants)
