"""`hunyuanvideo`: Tencent's HunyuanVideo 1.5 (8.3B) at 480p and 720p (4k+1 frames, sides /16, 24 fps).

Its pipelines take guidance from a guider component and call back no steps, so this family
sets the guider per job and counts steps at the scheduler.
"""

from __future__ import annotations

from itertools import count
from typing import Any

from backends.base import Checkpoint, FrameRule, GpuCost, SizeRule
from backends.local_model import LocalModelBackend, model_params
from dailies.contract.spec import JobSpec

REPO = "hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-"
FAMILY = Checkpoint(
    "",
    frames=FrameRule(step=4, offset=1, minimum=5, maximum=121, default=121),
    size=SizeRule(multiple=16, minimum=64, maximum=848, default=(848, 480), recommended_min=480),
    fps=24,
    steps=50,
    guidance=6.0,
)


class HunyuanVideoBackend(LocalModelBackend):
    name = "hunyuanvideo"
    display_name = "HunyuanVideo 1.5"
    description = (
        "Tencent's open HunyuanVideo 1.5 (8.3B) at 480p (848x480) or 720p (1280x720), 4k+1 frames up to 121, "
        "24 fps. Text-to-video and image-to-video (separate weights)."
    )
    pipeline = "HunyuanVideo15Pipeline"
    i2v_pipeline = "HunyuanVideo15ImageToVideoPipeline"
    # GpuCost: no published step times; sized from 8.3B with Qwen2.5-VL 7B and ByT5 until measured;
    # 720p's activations want the whole card (xlarge).
    checkpoints = (
        FAMILY.but(
            "480p",
            gpu=GpuCost(3.0, 848 * 480 * 121, 60),
            label="HunyuanVideo 1.5 480p",
            repo=REPO + "480p_t2v",
            i2v=REPO + "480p_i2v",
        ),
        FAMILY.but(
            "720p",
            gpu=GpuCost(7.0, 1280 * 720 * 121, 60, "xlarge"),
            label="HunyuanVideo 1.5 720p",
            repo=REPO + "720p_t2v",
            i2v=REPO + "720p_i2v",
            size=SizeRule(multiple=16, minimum=64, maximum=1280, default=(1280, 720), recommended_min=720),
        ),
    )
    params = model_params(checkpoints)

    def run(self, pipe: Any, args: dict[str, Any], request: JobSpec, checkpoint: Checkpoint) -> Any:
        on_step = args.pop("callback_on_step_end")
        pipe.guider = pipe.guider.new(guidance_scale=args.pop("guidance_scale"))
        if "image" in args:
            del args["width"], args["height"]  # the start image (at the asked size) picks the size
        step, steps = pipe.scheduler.step, count()

        def counted(*step_args: Any, **step_kwargs: Any) -> Any:
            result = step(*step_args, **step_kwargs)
            on_step(pipe, next(steps), None, {})  # progress, and a cancel stops here
            return result

        pipe.scheduler.step = counted
        try:
            return pipe(**args)
        finally:
            del pipe.scheduler.step  # the class's own step again
