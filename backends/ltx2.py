"""`ltx-2`: Lightricks' LTX-2, picture and synchronised sound in one pass (8k+1 frames, sides /32, 24 fps).

The full checkpoint runs in one stage with guidance; the distilled one runs the published
two-stage recipe: 8 steps at half size, the x2 latent upsampler, 3 refining steps at guidance 1.
"""

from __future__ import annotations

import logging
from typing import Any

from backends.base import SAME_WEIGHTS, TEXT_TO_VIDEO, Checkpoint, FrameRule, GenerationError, GpuCost, Param, SizeRule
from backends.local_model import LocalModelBackend, model_label, model_params
from dailies.contract.media import Audio
from dailies.contract.spec import JobSpec

FAMILY = Checkpoint(
    "",
    frames=FrameRule(step=8, offset=1, minimum=9, maximum=481, default=121),  # up to 20 s at 24 fps
    size=SizeRule(multiple=32, minimum=64, maximum=1920, default=(768, 512), recommended_min=256),
    fps=24,
    fps_range=(24, 30),
    i2v=SAME_WEIGHTS,
    steps=30,
    guidance=3.0,
)
log = logging.getLogger("dailies.models")
DISTILLED = "2.0-distilled"
REFINE_STEPS = 3  # the distilled recipe's second stage (diffusers' STAGE_2_DISTILLED_SIGMA_VALUES)
UPSAMPLER = "latent_upsampler"  # the x2 latent upsampler's folder next to the pipeline's


class LTX2Backend(LocalModelBackend):
    name = "ltx-2"
    display_name = "LTX-2"
    description = (
        "Lightricks' open LTX-2 (19B): video with synchronised sound in one pass, 8k+1 frames up to 20 s, "
        "sides a multiple of 32. The distilled checkpoint runs 8 + 3 steps in two stages. "
        "Text-to-video and image-to-video."
    )
    pipeline = "LTX2Pipeline"
    i2v_pipeline = "LTX2ImageToVideoPipeline"
    # GpuCost: no published step times; sized from 19B plus a 12B Gemma-3 text encoder (xlarge) until
    # measured. The distilled recipe's second stage is in fixed_s.
    checkpoints = (
        FAMILY.but("2.0", gpu=GpuCost(2.5, 768 * 512 * 121, 90, "xlarge"), label="LTX-2 19B", repo="Lightricks/LTX-2"),
        # Stage one runs at half the size: sides a multiple of 64.
        FAMILY.but(
            DISTILLED,
            gpu=GpuCost(2.5, 768 * 512 * 121, 90, "xlarge"),
            label="LTX-2 19B distilled",
            repo="rootonchair/LTX-2-19b-distilled",
            size=SizeRule(multiple=64, minimum=64, maximum=1920, default=(768, 512), recommended_min=256),
            steps=8,
            guidance=1.0,
        ),
    )
    params = (
        *model_params(checkpoints),
        Param("sound", bool, True, label="Sound", help="Keep the sound LTX-2 makes with the picture."),
        Param(
            "enhance_prompt",
            bool,
            False,
            label="Enhance prompt",
            help="Let the model's own prompt enhancer rewrite the prompt first (a second large model).",
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._upsamplers: dict[str, Any] = {}  # weights -> their x2 latent upsampler, loaded once

    def call_args(self, request: JobSpec, checkpoint: Checkpoint) -> dict[str, Any]:
        # The model is conditioned on the frame rate, and makes the sound for that many seconds.
        return {"frame_rate": float(request.fps), "enable_prompt_enhancement": request.params.get("enhance_prompt")}

    def total_steps(self, request: JobSpec, checkpoint: Checkpoint, steps: int) -> int:
        return steps + REFINE_STEPS if checkpoint.name == DISTILLED else steps

    def run(self, pipe: Any, args: dict[str, Any], request: JobSpec, checkpoint: Checkpoint) -> Any:
        if args["enable_prompt_enhancement"] and getattr(pipe, "prompt_enhancer", None) is None:
            raise GenerationError("these LTX-2 weights ship no prompt enhancer; turn enhance_prompt off")
        if checkpoint.name != DISTILLED:
            return pipe(**args)
        from diffusers import LTX2LatentUpsamplePipeline
        from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES

        first = {**args, "width": args["width"] // 2, "height": args["height"] // 2, "output_type": "latent"}
        # The distilled schedule at its 8 steps; another step count spaces the scheduler's own.
        sigmas = DISTILLED_SIGMA_VALUES if args["num_inference_steps"] == len(DISTILLED_SIGMA_VALUES) else None
        video, audio = pipe(**first, sigmas=sigmas, return_dict=False)
        upsample = LTX2LatentUpsamplePipeline(vae=pipe.vae, latent_upsampler=self._upsampler(pipe, checkpoint))
        video = upsample(latents=video, output_type="latent", return_dict=False)[0]
        on_step, done = args["callback_on_step_end"], args["num_inference_steps"]
        refine = STAGE_2_DISTILLED_SIGMA_VALUES
        return pipe(
            **{
                **args,
                "latents": video,
                "audio_latents": audio,
                "num_inference_steps": len(refine),
                "sigmas": refine,
                "noise_scale": refine[0],  # renoise to where the refining steps start
                "guidance_scale": 1.0,
                "callback_on_step_end": lambda p, step, t, tensors: on_step(p, done + step, t, tensors),
            }
        )

    def _upsampler(self, pipe: Any, checkpoint: Checkpoint) -> Any:
        """The x2 latent upsampler from the weights' `latent_upsampler` folder, loaded once per weights."""
        from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

        source = self.weights(checkpoint, TEXT_TO_VIDEO)
        if source not in self._upsamplers:
            log.info("loading the ltx-2 latent upsampler from %s", model_label(source))
            try:
                model = LTX2LatentUpsamplerModel.from_pretrained(source, subfolder=UPSAMPLER, dtype=pipe.vae.dtype)
            except (OSError, ValueError):
                raise GenerationError(f"no {UPSAMPLER} folder in the LTX-2 weights (the distilled recipe)") from None
            self._upsamplers[source] = model.to(pipe.device)
        return self._upsamplers[source]

    def sound(self, pipe: Any, output: Any, request: JobSpec) -> Audio | None:
        if not request.params.get("sound", True):
            return None
        return Audio(output.audio[0].float().cpu().numpy(), pipe.vocoder.config.output_sampling_rate)
