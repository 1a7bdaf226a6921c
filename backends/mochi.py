"""`mochi`: Genmo's Mochi 1 (848x480, 6k+1 frames, 30 fps; the bf16 weights) via diffusers."""

from __future__ import annotations

from backends.base import Checkpoint, FrameRule, GpuCost, SizeRule
from backends.local_model import LocalModelBackend, model_params


class MochiBackend(LocalModelBackend):
    name = "mochi"
    display_name = "Mochi 1"
    description = "Genmo's open Mochi 1 at 848x480 and 30 fps, bf16 weights (about 22 GB). Text-to-video."
    pipeline = "MochiPipeline"
    checkpoints = (
        Checkpoint(
            "1-preview",
            gpu=GpuCost(6.0, 848 * 480 * 163, 45),
            label="Mochi 1 preview",
            repo="genmo/mochi-1-preview",
            weights_variant="bf16",
            frames=FrameRule(step=6, offset=1, minimum=7, maximum=163, default=85),
            size=SizeRule(multiple=16, minimum=64, maximum=848, default=(848, 480), recommended_min=480),
            fps=30,
            steps=64,
            guidance=4.5,
        ),
    )
    params = model_params(checkpoints)
