"""The public Pyramid Flow reference (github.com/jy0205/Pyramid-Flow), imported from a local checkout,
and the tiny runs whose outputs are stored in tests/data/pyramid_reference.npz.

The reference pins old libraries, so its modules are imported straight from the checkout, with
stand-ins for what does not import here (as in tests/test_pyramid_reference.py and
tests/test_pyramid_vae.py): its `trainer_misc` package (training utilities), timm (only
`trunc_normal_`, for initialisation), torchvision (image-to-video transforms), and the
`pyramid_dit` / `video_vae` package __init__s, which import modules the miniflux path never uses.
The reference draws its 2x2 block noise from the global RNG through a MultivariateNormal that
recent torch refuses (the covariance is singular), so it is given our `block_noise` with the same
generator: the same noise on both sides, as the comparison needs.

Nothing from the checkout is copied into this repository: `scripts/pyramid_reference.py` runs it
and stores only numbers.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# The reference commit the stored numbers come from (jy0205/Pyramid-Flow main, "Merge pull request #196").
COMMIT = "3040d717b0ef48f0dfb10d0eb9f3c1d0b55442e0"
STORED = Path(__file__).resolve().parent / "data" / "pyramid_reference.npz"

PROMPT = "a red boat on the sea"
FIRST_STEPS, VIDEO_STEPS = [2, 1, 2], [1, 2, 1]  # per stage: uneven, so a stage mixed up shows
GENERATION = dict(height=64, width=64, guidance_scale=9.0, video_guidance_scale=5.0)
SEED = 11
TEMP = 3  # latent frames: 17 video frames
SCHEDULE_STEPS = (1, 3, 10)  # the scheduler's timesteps and sigmas stored for each stage at these step counts
SCHEDULER = dict(shift=1.0, stages=3, stage_range=[0, 1 / 3, 2 / 3, 1], gamma=1 / 3)  # the miniflux pipeline's


def _stand_in(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attributes)
    return module


@contextmanager
def reference_modules(checkout: Path) -> Iterator[types.SimpleNamespace]:
    """The reference's transformer, text encoder, pipeline, scheduler and VAE classes; every module
    imported meanwhile is dropped again on the way out."""
    # diffusers and transformers are loaded before the stand-ins, so they do not take them for the real packages.
    import diffusers  # noqa: F401
    import torch
    from transformers import CLIPTextModel, T5EncoderModel  # noqa: F401

    root = checkout.resolve()
    before = set(sys.modules)
    timm_layers = _stand_in("timm.models.layers", trunc_normal_=torch.nn.init.trunc_normal_, drop_path=None)
    timm_layers.to_2tuple = None
    unused = dict.fromkeys(
        ("get_sequence_parallel_group", "get_sequence_parallel_world_size", "get_sequence_parallel_rank",
         "get_sequence_parallel_group_rank", "all_to_all"),
    )  # fmt: skip
    # Image-to-video's transforms: to a [C, H, W] tensor in [0, 1], then normalised.
    transforms = _stand_in(
        "torchvision.transforms",
        Compose=lambda steps: lambda x: functools.reduce(lambda value, step: step(value), steps, x),
        ToTensor=lambda: lambda image: torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1),
        Normalize=lambda mean, std: (
            lambda x: (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
        ),
    )
    packages = {}
    for name in ("video_vae", "pyramid_dit"):
        packages[name] = types.ModuleType(name)
        packages[name].__path__ = [str(root / name)]
    stand_ins = {
        "timm": _stand_in("timm"),
        "timm.models": _stand_in("timm.models"),
        "timm.models.hub": _stand_in("timm.models.hub"),
        "timm.models.layers": timm_layers,
        "trainer_misc": _stand_in(
            "trainer_misc", is_sequence_parallel_initialized=lambda: False, get_rank=lambda: 0, **unused
        ),
        "torchvision": _stand_in("torchvision", transforms=transforms),
        # The SD3-based variant's modules (they import IPython); the miniflux path never uses them.
        "pyramid_dit.mmdit_modules": _stand_in(
            "pyramid_dit.mmdit_modules", PyramidDiffusionMMDiT=None, SD3TextEncoderWithMask=None
        ),
        **packages,
    }  # fmt: skip
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    sys.path.insert(0, str(root))
    try:
        yield types.SimpleNamespace(
            transformer=importlib.import_module(
                "pyramid_dit.flux_modules.modeling_pyramid_flux"
            ).PyramidFluxTransformer,
            text_encoder=importlib.import_module(
                "pyramid_dit.flux_modules.modeling_text_encoder"
            ).FluxTextEncoderWithMask,
            pipeline=importlib.import_module(
                "pyramid_dit.pyramid_dit_for_video_gen_pipeline"
            ).PyramidDiTForVideoGeneration,
            scheduler=importlib.import_module("diffusion_schedulers").PyramidFlowMatchEulerDiscreteScheduler,
            vae=importlib.import_module("video_vae.modeling_causal_vae").CausalVideoVAE,
        )
    finally:
        sys.path.remove(str(root))
        for name in set(sys.modules) - before:
            del sys.modules[name]
        sys.modules.update({name: module for name, module in saved.items() if module is not None})


def reference_pipeline(reference: types.SimpleNamespace, ours: Any, checkpoint: Path) -> Any:
    """The reference's generation wrapper holding our tiny pipeline's weights (its __init__ only reads files)."""
    import torch

    from tests.tiny_pyramid import TRANSFORMER, VAE

    pipe = object.__new__(reference.pipeline)
    pipe.dit = reference.transformer(**TRANSFORMER, use_flash_attn=False).eval()
    pipe.dit.load_state_dict(ours.transformer.state_dict(), strict=True)
    pipe.text_encoder = reference.text_encoder(str(checkpoint), torch_dtype=torch.float32)
    pipe.vae = reference.vae(**VAE).eval()
    pipe.vae.load_state_dict(ours.vae.state_dict(), strict=True)
    pipe.stages, pipe.frame_per_unit, pipe.downsample = [1, 2, 4], 1, 8
    pipe.model_name, pipe.load_vae, pipe.load_text_encoder, pipe.sequential_offload_enabled = "pyramid_flux", 1, 1, 0
    # The miniflux checkpoint's latent normalisation (the reference's pipeline sets these for it).
    pipe.vae_shift_factor, pipe.vae_scale_factor = -0.04, 1 / 1.8726
    pipe.vae_video_shift_factor, pipe.vae_video_scale_factor = -0.2343, 1 / 3.0986
    pipe.scheduler = reference.scheduler(**SCHEDULER)
    return pipe


def frame_means(frames: np.ndarray) -> np.ndarray:
    """Each decoded frame's mean per colour channel, in bytes (0-255): [T, 3]."""
    return frames.reshape(frames.shape[0], -1, 3).mean(axis=1)
