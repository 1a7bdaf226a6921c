"""Pyramid Flow text-to-video and image-to-video, with the surface of a diffusers pipeline.

A video is made one latent frame at a time (autoregressively). Each frame is denoised in three
stages of rising resolution; the frames made so far condition it as a compressed history: the
newest at the current resolution, older ones at lower resolutions. The first frame comes from the
prompt alone (text-to-video: `guidance_scale`, `num_inference_steps`) or is the encoded start
image (image-to-video); every later frame uses `video_guidance_scale` and
`video_num_inference_steps`. All randomness comes from the `generator`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from backends.pyramid_flow import latent_frames
from backends.pyramid_flow.scheduler import PyramidFlowScheduler
from backends.pyramid_flow.transformer import PATCH, PyramidFluxTransformer
from backends.pyramid_flow.vae import CausalVideoVAE

TEXT_ENCODER_FOLDERS = ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2")
VAE_FOLDER = "causal_video_vae"
TRANSFORMER_PREFIX = "diffusion_transformer"
T5_MAX_LENGTH = 128
# The published demo's defaults: a suffix on every prompt and this negative prompt.
PROMPT_SUFFIX = ", hyper quality, Ultra HD, 8K"
NEGATIVE_PROMPT = (
    "cartoon style, worst quality, low quality, blurry, absolute black, absolute white, low res, "
    "extra limbs, extra digits, misplaced objects, mutated anatomy, monochrome, horror"
)
VAE_COMPRESSION = (8, 8)  # (time, space)
# Latent normalisation of the miniflux checkpoint: the first latent frame (an image) and later frames.
IMAGE_SHIFT, IMAGE_SCALE = -0.04, 1 / 1.8726
VIDEO_SHIFT, VIDEO_SCALE = -0.2343, 1 / 3.0986

StepCallback = Callable[[Any, int, Tensor, dict[str, Tensor]], dict[str, Tensor]]


@dataclass
class PyramidFlowOutput:
    frames: np.ndarray | Tensor  # np: floats in [0, 1], [B, T, H, W, 3]; latent: [B, C, t, h, w]


def _steps(value: int | Sequence[int], stages: int) -> list[int]:
    return [int(value)] * stages if isinstance(value, int) else [int(v) for v in value]


def _per_frame(latents: Tensor, resize: Callable[[Tensor], Tensor]) -> Tensor:
    """Apply a 2D resize to every frame of [B, C, T, H, W]."""
    b, c, t, h, w = latents.shape
    frames = resize(latents.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
    return frames.reshape(b, t, c, *frames.shape[-2:]).permute(0, 2, 1, 3, 4)


def _halve(latents: Tensor) -> Tensor:
    return _per_frame(latents, lambda x: F.interpolate(x, size=(x.shape[-2] // 2, x.shape[-1] // 2), mode="bilinear"))


def _double(latents: Tensor) -> Tensor:
    return _per_frame(latents, lambda x: F.interpolate(x, size=(x.shape[-2] * 2, x.shape[-1] * 2), mode="nearest"))


def resolve(source: str) -> tuple[Path, str | None]:
    """The checkpoint folder and the transformer folder that `source` names, if it names one.

    `source` is a local folder or a Hub repo id, either of them optionally followed by one
    transformer folder: `rain1011/pyramid-flow-miniflux/diffusion_transformer_768p`. From the Hub
    only the parts this pipeline reads are fetched (one transformer, not all of them)."""
    local = Path(source).expanduser()
    if local.is_dir():
        if local.name.startswith(TRANSFORMER_PREFIX):
            return local.parent, local.name
        return local, None
    from huggingface_hub import snapshot_download

    owner, _, rest = source.partition("/")
    name, _, transformer = rest.partition("/")
    folders = (*TEXT_ENCODER_FOLDERS, VAE_FOLDER, transformer or f"{TRANSFORMER_PREFIX}*")
    root = Path(snapshot_download(f"{owner}/{name}", allow_patterns=[f"{folder}/*" for folder in folders]))
    return root, transformer or None


def _strict(cls: Any, folder: Path, dtype: torch.dtype) -> Any:
    """A transformers text encoder whose weights match its class exactly (transformers itself only warns)."""
    model, info = cls.from_pretrained(folder, dtype=dtype, output_loading_info=True)
    mismatched = {kind: sorted(keys) for kind, keys in info.items() if keys}
    if mismatched:
        raise ValueError(f"{folder.name} does not match {cls.__name__}: {mismatched}")
    return model.eval()


def _execution_device(device: str, gpu_id: int | None) -> torch.device:
    """cuda:N (N = gpu_id, else 0); "cpu" keeps no index (accelerate's hooks refuse cpu:0; tests offload to it)."""
    return torch.device(device) if device == "cpu" else torch.device(device, gpu_id or 0)


class PyramidFlowPipeline:
    """Components: transformer, vae, text_encoder (CLIP-L), tokenizer, text_encoder_2 (T5), tokenizer_2."""

    def __init__(
        self,
        transformer: PyramidFluxTransformer,
        vae: CausalVideoVAE,
        text_encoder: Any,
        tokenizer: Any,
        text_encoder_2: Any,
        tokenizer_2: Any,
        scheduler: PyramidFlowScheduler | None = None,
    ) -> None:
        self.transformer = transformer
        self.vae = vae
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.text_encoder_2 = text_encoder_2
        self.tokenizer_2 = tokenizer_2
        self.scheduler = scheduler or PyramidFlowScheduler()
        self._offload_device: torch.device | None = None  # model offload: one module at a time on it
        self._sequential_device: torch.device | None = None
        self._step = 0  # step callbacks made so far in this call, across stages and frames

    # -- loading and placement -------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls, source: str, dtype: torch.dtype = torch.float32, variant: str | None = None
    ) -> PyramidFlowPipeline:
        """Load the official layout: text_encoder(_2), tokenizer(_2), causal_video_vae, diffusion_transformer_*.

        `source` (a folder or repo id) may end in the transformer folder to use, e.g.
        `.../diffusion_transformer_768p`; otherwise it must hold only one. `variant` picks weight
        files `diffusion_pytorch_model.<variant>.safetensors`."""
        from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

        root, transformer = resolve(source)
        if transformer is None:
            found = sorted(p.name for p in root.glob(f"{TRANSFORMER_PREFIX}*") if p.is_dir())
            if len(found) != 1:
                raise ValueError(
                    f"{source} holds {len(found)} transformer folders ({', '.join(found)}); end the source in one"
                )
            transformer = found[0]
        return cls(
            transformer=PyramidFluxTransformer.from_pretrained(root / transformer, dtype=dtype, variant=variant),
            vae=CausalVideoVAE.from_pretrained(root / VAE_FOLDER, dtype=dtype),
            text_encoder=_strict(CLIPTextModel, root / "text_encoder", dtype),
            tokenizer=CLIPTokenizer.from_pretrained(root / "tokenizer"),
            text_encoder_2=_strict(T5EncoderModel, root / "text_encoder_2", dtype),
            tokenizer_2=T5TokenizerFast.from_pretrained(root / "tokenizer_2"),
        )

    @classmethod
    def from_pipe(cls, pipe: PyramidFlowPipeline) -> PyramidFlowPipeline:
        """The same pipeline: one class and one set of weights do text- and image-to-video."""
        return pipe

    @property
    def components(self) -> dict[str, Any]:
        return {
            "transformer": self.transformer,
            "vae": self.vae,
            "text_encoder": self.text_encoder,
            "tokenizer": self.tokenizer,
            "text_encoder_2": self.text_encoder_2,
            "tokenizer_2": self.tokenizer_2,
            "scheduler": self.scheduler,
        }

    @property
    def _modules(self) -> tuple[torch.nn.Module, ...]:
        return (self.text_encoder, self.text_encoder_2, self.transformer, self.vae)

    def to(self, device: str | torch.device) -> PyramidFlowPipeline:
        for module in self._modules:
            module.to(device)
        return self

    def enable_model_cpu_offload(self, gpu_id: int | None = None, device: str = "cuda") -> None:
        """Keep every module in RAM and move each to the GPU only while it runs."""
        self.to("cpu")
        self._offload_device = _execution_device(device, gpu_id)

    def enable_sequential_cpu_offload(self, gpu_id: int | None = None, device: str = "cuda") -> None:
        """Stream the weights to the GPU layer by layer (slowest, smallest)."""
        from accelerate import cpu_offload

        self._sequential_device = _execution_device(device, gpu_id)
        for module in self._modules:
            cpu_offload(module, execution_device=self._sequential_device)

    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Part of the pipeline surface; this pipeline draws no bar (progress goes to the step callback)."""

    @property
    def device(self) -> torch.device:
        return self._offload_device or self._sequential_device or self.transformer.x_embedder.weight.device

    @contextmanager
    def _running(self, *modules: torch.nn.Module) -> Iterator[None]:
        """With model offload, `modules` sit on the GPU for the block and go back to RAM after it."""
        if self._offload_device is None:
            yield
            return
        for module in modules:
            module.to(self._offload_device)
        try:
            yield
        finally:
            for module in modules:
                module.to("cpu")
            torch.cuda.empty_cache()

    # -- the parts of a call ---------------------------------------------------------------

    @property
    def stages(self) -> int:
        return self.scheduler.stages

    @property
    def size_multiple(self) -> int:
        """Width and height: the VAE's 8x, halved per extra stage, then 2x2 patches."""
        return VAE_COMPRESSION[1] * 2 ** (self.stages - 1) * PATCH

    def check_inputs(
        self,
        prompt: str,
        height: int,
        width: int,
        num_frames: int,
        num_inference_steps: list[int],
        video_num_inference_steps: list[int],
        image: Any,
    ) -> None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty string")
        if height % self.size_multiple or width % self.size_multiple or min(height, width) <= 0:
            raise ValueError(
                f"height and width must be positive multiples of {self.size_multiple}, got {width}x{height}"
            )
        if num_frames < 1 + VAE_COMPRESSION[0] or (num_frames - 1) % VAE_COMPRESSION[0]:
            raise ValueError(f"num_frames must be 8k+1 with k >= 1 (9, 17, ..., 121, ...), got {num_frames}")
        for name, steps in (
            ("num_inference_steps", num_inference_steps),
            ("video_num_inference_steps", video_num_inference_steps),
        ):
            if len(steps) != self.stages or min(steps) < 1:
                raise ValueError(f"{name} must be one positive step count or {self.stages} of them, got {steps}")
        if image is not None and (image.width, image.height) != (width, height):
            raise ValueError(f"image is {image.width}x{image.height}; resize it to {width}x{height} first")

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """T5 states [B, 128, D] with their mask, and the pooled CLIP embedding [B, 768]."""
        with self._running(self.text_encoder):
            clip = self.tokenizer(
                prompts,
                padding="max_length",
                max_length=self.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            )
            pooled = self.text_encoder(clip.input_ids.to(device)).pooler_output
        with self._running(self.text_encoder_2):
            t5 = self.tokenizer_2(
                prompts, padding="max_length", max_length=T5_MAX_LENGTH, truncation=True, return_tensors="pt"
            )
            mask = t5.attention_mask.to(device)
            states = self.text_encoder_2(t5.input_ids.to(device), attention_mask=mask)[0]
        dtype = self.transformer.dtype
        return states.to(dtype), mask, pooled.to(dtype)

    def prepare_latents(
        self, batch: int, frames: int, height: int, width: int, generator: torch.Generator | None, device: torch.device
    ) -> Tensor:
        """Noise for every latent frame at full latent size, brought down to the first stage's resolution."""
        shape = (
            batch,
            self.transformer.latent_channels,
            frames,
            height // VAE_COMPRESSION[1],
            width // VAE_COMPRESSION[1],
        )
        noise_device = generator.device if generator is not None else torch.device("cpu")
        latents = torch.randn(shape, generator=generator, device=noise_device).to(device, self.transformer.dtype)
        for _ in range(self.stages - 1):
            latents = _halve(latents) * 2  # keeps unit variance per latent pixel
        return latents

    def block_noise(self, shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """Noise correlated within each 2x2 block, covariance (1 + gamma) I - gamma, as the renoising was trained.

        At gamma = 1/3 the covariance is singular (each block's noise sums to zero), so it is drawn
        through its symmetric square root; a Cholesky factor (the reference's MultivariateNormal)
        does not exist and recent torch refuses it."""
        b, c, t, h, w = shape
        gamma = self.scheduler.gamma
        covariance = torch.eye(4, dtype=torch.float64) * (1 + gamma) - gamma
        values, vectors = torch.linalg.eigh(covariance)
        root = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
        noise_device = generator.device if generator is not None else torch.device("cpu")
        white = torch.randn(b, c, t, h // 2, w // 2, 4, generator=generator, device=noise_device)
        blocks = white @ root.float().to(noise_device)  # root is symmetric: each block is root @ z
        blocks = blocks.reshape(b, c, t, h // 2, w // 2, 2, 2).permute(0, 1, 2, 3, 5, 4, 6)
        return blocks.reshape(b, c, t, h, w).to(device, self.transformer.dtype)

    @staticmethod
    def history(generated: Tensor, stages: int) -> list[list[Tensor]]:
        """Per stage, the clean frames so far as conditioning clips, oldest first.

        The newest frame comes at the stage's own resolution, the one before it a stage lower, and
        so on; everything older than that sits at the lowest resolution."""
        pyramid = [generated]
        for _ in range(stages - 1):
            pyramid.insert(0, _halve(pyramid[0]))
        count = generated.shape[2]
        clips = []
        for stage in range(stages):
            newest_first = [pyramid[stage][:, :, -1:]]
            level, taken = stage, 1
            while taken < count and level > 1:
                level -= 1
                taken += 1
                newest_first.append(pyramid[level][:, :, -taken : -taken + 1])
            if taken < count:
                newest_first.append(pyramid[0][:, :, :-taken])
            clips.append(newest_first[::-1])
        return clips

    def denoise_frame(
        self,
        latents: Tensor,
        history: list[list[Tensor]],
        text: tuple[Tensor, Tensor, Tensor],
        steps: list[int],
        guidance_scale: float,
        generator: torch.Generator | None,
        callback: StepCallback | None,
    ) -> Tensor:
        """One latent frame through every stage: Euler steps, then upsample and renoise for the next stage."""
        states, mask, pooled = text
        guided = states.shape[0] == 2 * latents.shape[0]
        for stage in range(self.stages):
            schedule = self.scheduler.schedule(steps[stage], stage, latents.device)
            if stage > 0:
                latents = _double(latents)
                alpha, beta = self.scheduler.renoise_coefficients(stage)
                latents = alpha * latents + beta * self.block_noise(latents.shape, generator, latents.device)
            clips = [torch.cat([clip] * 2) if guided else clip for clip in history[stage]]
            for index, t in enumerate(schedule.timesteps):
                model_input = torch.cat([latents] * 2) if guided else latents
                timestep = t.expand(model_input.shape[0]).to(model_input.dtype)
                velocity = self.transformer(clips + [model_input], states, mask, pooled, timestep)
                if guided:
                    uncond, cond = velocity.chunk(2)
                    velocity = uncond + guidance_scale * (cond - uncond)
                latents = self.scheduler.step(velocity, schedule, index, latents)
                if callback is not None:
                    latents = callback(self, self._step, t, {"latents": latents}).get("latents", latents)
                self._step += 1
        return latents

    def normalize(self, latents: Tensor) -> Tensor:
        """VAE latents to the transformer's scale: the first frame as an image, later ones as video."""
        return torch.cat(
            [(latents[:, :, :1] - IMAGE_SHIFT) * IMAGE_SCALE, (latents[:, :, 1:] - VIDEO_SHIFT) * VIDEO_SCALE], dim=2
        )

    def denormalize(self, latents: Tensor) -> Tensor:
        return torch.cat(
            [latents[:, :, :1] / IMAGE_SCALE + IMAGE_SHIFT, latents[:, :, 1:] / VIDEO_SCALE + VIDEO_SHIFT], dim=2
        )

    @torch.no_grad()
    def encode_image(self, image: Any, device: torch.device) -> Tensor:
        """The start image as a normalised first latent frame [1, C, 1, h, w] (the VAE's mean)."""
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0)
        pixels = pixels.permute(2, 0, 1)[None, :, None].to(device, self.vae_dtype)
        with self._running(self.vae):
            latent = self.vae.encode(pixels)
        return self.normalize(latent.to(self.transformer.dtype))

    @property
    def vae_dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @torch.no_grad()
    def decode_latents(self, latents: Tensor) -> np.ndarray:
        with self._running(self.vae):
            video = self.vae.decode(self.denormalize(latents).to(self.vae_dtype))
        video = (video.float() / 2 + 0.5).clamp(0, 1)
        return video.permute(0, 2, 3, 4, 1).cpu().numpy()

    # -- the call --------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        prompt: str,
        negative_prompt: str | None = None,
        height: int = 384,
        width: int = 640,
        num_frames: int = 121,
        num_inference_steps: int | Sequence[int] = 20,
        video_num_inference_steps: int | Sequence[int] = 10,
        guidance_scale: float = 9.0,
        video_guidance_scale: float = 5.0,
        generator: torch.Generator | None = None,
        output_type: str = "np",
        callback_on_step_end: StepCallback | None = None,
        image: Any = None,
    ) -> PyramidFlowOutput:
        """Make one video of `num_frames` (8k+1) frames; with `image`, the video starts from it.

        Image-to-video runs `video_num_inference_steps` and `video_guidance_scale` for every frame
        after the image; `num_inference_steps` and `guidance_scale` shape the first frame of
        text-to-video only. Guidance above 1 runs the negative prompt beside the prompt."""
        steps = _steps(num_inference_steps, self.stages)
        video_steps = _steps(video_num_inference_steps, self.stages)
        self.check_inputs(prompt, height, width, num_frames, steps, video_steps, image)
        device = self.device
        frames = latent_frames(num_frames)
        self._step = 0

        # 1. Text: the negative prompt first, so guidance is uncond + scale * (cond - uncond).
        prompts = [prompt + PROMPT_SUFFIX]
        guided = max(guidance_scale if image is None else 0.0, video_guidance_scale) > 1
        if guided:
            negative = NEGATIVE_PROMPT if negative_prompt is None else negative_prompt
            prompts.insert(0, negative)
        text = self.encode_prompt(prompts, device)

        # 2. Noise for every latent frame, at the first stage's resolution.
        latents = self.prepare_latents(1, frames, height, width, generator, device)

        # 3. The first latent frame: the encoded image, or made from the prompt.
        generated = self.encode_image(image, device) if image is not None else None
        noise_offset = 1 if image is not None else 0  # image-to-video gives noise frame 0 to latent frame 1
        with self._running(self.transformer):
            if generated is None:
                no_history = [[] for _ in range(self.stages)]
                generated = self.denoise_frame(
                    latents[:, :, :1], no_history, text, steps, guidance_scale, generator, callback_on_step_end
                )

            # 4. Every later frame, conditioned on the frames before it.
            for index in range(1, frames):
                frame_noise = latents[:, :, index - noise_offset : index - noise_offset + 1]
                history = self.history(generated, self.stages)
                frame = self.denoise_frame(
                    frame_noise, history, text, video_steps, video_guidance_scale, generator, callback_on_step_end
                )
                generated = torch.cat([generated, frame], dim=2)

        # 5. Decode.
        if output_type == "latent":
            return PyramidFlowOutput(frames=generated)
        return PyramidFlowOutput(frames=self.decode_latents(generated))
