"""`pyramid-flow`: Pyramid Flow miniflux (384p and 768p, 24 fps) on our own pipeline, not diffusers.

This module is the declaration only and imports no torch; the worker loads
`backends.pyramid_flow.pipeline` (transformer, scheduler, the causal video VAE, CLIP-L and T5)
through the shared local-model runtime.
"""

from __future__ import annotations

from typing import Any

from backends.base import IMAGE_TO_VIDEO, SAME_WEIGHTS, TEXT_TO_VIDEO, Checkpoint, FrameRule, GpuCost, Param, SizeRule
from backends.local_model import LocalModelBackend, model_params
from dailies.contract.spec import JobSpec

STAGES = 3
VIDEO_STEPS = 10  # per stage, for every latent frame after the first
VIDEO_GUIDANCE = {TEXT_TO_VIDEO: 5.0, IMAGE_TO_VIDEO: 4.0}
# Each checkpoint is one transformer folder of the repo; the VAE and text encoders are shared.
TRANSFORMER_FOLDERS = {"384p": "diffusion_transformer_384p", "768p": "diffusion_transformer_768p"}

# 8k+1 frames (1 + k latent frames, "temp" in the reference); sides are multiples of 64: the VAE's
# 8x, two halvings for the lower stages and 2x2 patches. Smaller sizes run, for tests and previews.
FAMILY = Checkpoint(
    "",
    frames=FrameRule(step=8, offset=1, minimum=9, maximum=121, default=121),
    size=SizeRule(multiple=64, minimum=64, maximum=640, default=(640, 384), recommended_min=384),
    fps=24,
    i2v=SAME_WEIGHTS,
    steps=20,
    guidance=9.0,
    repo="rain1011/pyramid-flow-miniflux",
)


def latent_frames(num_frames: int) -> int:
    """Frames 8k+1 are 1+k latent frames (16 ~ 5 s, 31 ~ 10 s at 24 fps)."""
    return 1 + (num_frames - 1) // 8


class PyramidFlowBackend(LocalModelBackend):
    name = "pyramid-flow"
    display_name = "Pyramid Flow"
    description = (
        "The open Pyramid Flow (miniflux): autoregressive video by flow matching over a pyramid of "
        "resolutions, 640x384 up to 5 s or 1280x768 up to 10 s, 24 fps. Text-to-video and image-to-video."
    )
    pipeline = i2v_pipeline = "backends.pyramid_flow.pipeline.PyramidFlowPipeline"
    requires = ("torch", "transformers", "safetensors")
    # GpuCost: `steps` are the first frame's; the later frames' video steps at their default are folded
    # into the step time (5 s at 768p: ~5.5 min on an A100).
    checkpoints = (
        FAMILY.but(
            "384p", gpu=GpuCost(1.5, 640 * 384 * 121, 30), label="Pyramid Flow miniflux 384p"
        ),  # 121 frames = 16 latent frames, ~5 s
        FAMILY.but(
            "768p",
            gpu=GpuCost(8.0, 1280 * 768 * 121, 40),
            label="Pyramid Flow miniflux 768p",
            frames=FrameRule(step=8, offset=1, minimum=9, maximum=241, default=121),  # 241 = 31 latent frames
            size=SizeRule(multiple=64, minimum=64, maximum=1280, default=(1280, 768), recommended_min=768),
        ),
    )
    params = (
        *model_params(checkpoints),
        Param(
            "video_steps",
            int,
            None,
            minimum=1,
            maximum=100,
            label="Video steps",
            help=f"Steps per stage for every frame after the first; empty: {VIDEO_STEPS}.",
        ),
        Param(
            "video_guidance",
            float,
            None,
            minimum=0.0,
            maximum=20.0,
            label="Video guidance",
            help="Guidance for every frame after the first; empty: 5 (image-to-video: 4).",
        ),
    )

    def weights(self, checkpoint: Checkpoint, mode: str) -> str:
        """The repo or folder of the checkpoint, ending in this model's transformer folder."""
        return f"{super().weights(checkpoint, mode).rstrip('/')}/{TRANSFORMER_FOLDERS[checkpoint.name]}"

    def _video_args(self, request: JobSpec) -> tuple[int, float]:
        mode = IMAGE_TO_VIDEO if request.image is not None else TEXT_TO_VIDEO
        steps = request.params.get("video_steps") or VIDEO_STEPS
        guidance = request.params.get("video_guidance")
        return steps, VIDEO_GUIDANCE[mode] if guidance is None else guidance

    def call_args(self, request: JobSpec, checkpoint: Checkpoint) -> dict[str, Any]:
        steps, guidance = self._video_args(request)
        return {"video_num_inference_steps": steps, "video_guidance_scale": guidance}

    def total_steps(self, request: JobSpec, checkpoint: Checkpoint, steps: int) -> int:
        """Every step of every stage of every latent frame (image-to-video: the image takes none)."""
        video_steps, _ = self._video_args(request)
        later = (latent_frames(request.num_frames) - 1) * STAGES * video_steps
        return later if request.image is not None else STAGES * steps + later
