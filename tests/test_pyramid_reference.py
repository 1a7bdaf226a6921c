"""Our Pyramid Flow against the public reference (jy0205/Pyramid-Flow), on the same tiny random weights.

Runs only where PYRAMID_FLOW_REFERENCE points at a local checkout (`-m live`). The reference pins
old libraries, so its modules are imported straight from the checkout, with stand-ins for what does
not import here (tests/pyramid_reference.py, shared with the script that stores the numbers every
default run checks). The reference draws its block noise from the global RNG through a
MultivariateNormal that recent torch refuses (the covariance is singular), so both sides get their
block noise from our `block_noise` with the same generator: same noise, as the comparison needs.
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="model dependencies are not installed (requirements-models.txt)")
# Loaded before the torchvision stand-in below, so transformers does not take it for the real package.
from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast  # noqa: E402, F401

from backends.pyramid_flow.pipeline import PyramidFlowPipeline  # noqa: E402
from backends.pyramid_flow.scheduler import PyramidFlowScheduler  # noqa: E402
from tests.pyramid_reference import reference_modules, reference_pipeline  # noqa: E402
from tests.tiny_pyramid import FOLDERS, TRANSFORMER, save_tiny_pyramid  # noqa: E402

# Needs a checkout of the reference, which CI has not: asked for like the live tests. Every default
# run checks the same numbers against tests/data/pyramid_reference.npz (test_pyramid_stored_reference).
pytestmark = [pytest.mark.pyramid, pytest.mark.live]

PROMPT = "a red boat on the sea"
FIRST_STEPS, VIDEO_STEPS = [2, 1, 2], [1, 2, 1]


@pytest.fixture(scope="module")
def reference() -> Iterator[types.SimpleNamespace]:
    """The reference's transformer, scheduler, pipeline and VAE classes, from its checkout."""
    checkout = os.environ.get("PYRAMID_FLOW_REFERENCE")
    if not checkout:
        pytest.skip("PYRAMID_FLOW_REFERENCE is not set (a local checkout of jy0205/Pyramid-Flow)")
    with reference_modules(Path(checkout).resolve()) as modules:
        yield modules


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pyramid(tmp_path_factory.mktemp("pyramid"))


@pytest.fixture(scope="module")
def ours(checkpoint: Path) -> PyramidFlowPipeline:
    return PyramidFlowPipeline.from_pretrained(str(checkpoint / FOLDERS["384p"]))


def report(capsys: pytest.CaptureFixture[str], name: str, value: float) -> None:
    with capsys.disabled():
        print(f"\nmax |ours - reference| {name}: {value:.2e}")


def test_scheduler_matches(reference: types.SimpleNamespace) -> None:
    theirs = reference.scheduler(shift=1.0, stages=3, stage_range=[0, 1 / 3, 2 / 3, 1], gamma=1 / 3)
    ours = PyramidFlowScheduler()
    for stage in range(3):
        for steps in (1, 10, 20):
            theirs.set_timesteps(steps, stage)
            schedule = ours.schedule(steps, stage)
            assert torch.equal(schedule.timesteps, theirs.timesteps) and torch.equal(schedule.sigmas, theirs.sigmas)


def test_one_transformer_step_matches(reference, ours, capsys) -> None:
    theirs = reference.transformer(**TRANSFORMER, use_flash_attn=False).eval()
    theirs.load_state_dict(ours.transformer.state_dict(), strict=True)
    g = torch.Generator().manual_seed(0)
    channels = TRANSFORMER["in_channels"] // 4
    # A history of two frames at the lowest resolution and one at the middle, then the frame being denoised.
    clips = [torch.randn(2, channels, *shape, generator=g) for shape in ((2, 2, 2), (1, 4, 4), (1, 8, 8))]
    states, pooled = torch.randn(2, 9, TRANSFORMER["joint_attention_dim"], generator=g), torch.randn(2, 32, generator=g)
    mask = torch.tensor([[1] * 4 + [0] * 5, [1] * 7 + [0] * 2])
    timestep = torch.tensor([744.0, 401.5])
    with torch.no_grad():
        mine = ours.transformer(clips, states, mask, pooled, timestep)
        expected = theirs(
            sample=[clips], encoder_hidden_states=states, encoder_attention_mask=mask,
            pooled_projections=pooled, timestep_ratio=timestep,
        )[0]  # fmt: skip
    report(capsys, "one transformer step", (mine - expected).abs().max().item())
    torch.testing.assert_close(mine, expected, rtol=1e-5, atol=1e-5)


def test_whole_generation_matches(reference, ours, checkpoint, capsys) -> None:
    theirs = reference_pipeline(reference, ours, checkpoint)
    args = dict(height=64, width=64, guidance_scale=9.0, video_guidance_scale=5.0)

    generator = torch.Generator().manual_seed(11)
    theirs.sample_block_noise = lambda b, c, t, h, w: ours.block_noise(torch.Size([b, c, t, h, w]), generator, "cpu")
    with torch.no_grad():
        expected = theirs.generate(
            prompt=PROMPT, temp=3, num_inference_steps=FIRST_STEPS, video_num_inference_steps=VIDEO_STEPS,
            generator=generator, output_type="latent", **args,
        )  # fmt: skip
        expected_frames = np.stack([np.asarray(f) for f in theirs.decode_latent(expected.clone(), save_memory=False)])
    mine = ours(
        prompt=PROMPT, num_frames=17, num_inference_steps=FIRST_STEPS, video_num_inference_steps=VIDEO_STEPS,
        generator=torch.Generator().manual_seed(11), output_type="latent", **args,
    ).frames  # fmt: skip
    frames = ours.decode_latents(mine)[0]
    report(capsys, "latents of a 3-latent-frame generation", (mine - expected).abs().max().item())
    torch.testing.assert_close(mine, expected, rtol=1e-4, atol=1e-4)
    # The reference truncates 127.5 * x + 127.5 to bytes; ours keeps x / 2 + 0.5 as floats in [0, 1].
    ours_bytes = np.floor(np.clip(frames * 255.0, 0, 255) + 1e-4).astype(np.int16)
    difference = np.abs(ours_bytes - expected_frames.astype(np.int16))
    report(capsys, "decoded frames, in bytes", float(difference.max()))
    assert expected_frames.shape == frames.shape == (17, 64, 64, 3)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_image_to_video_matches(reference, ours, checkpoint, capsys) -> None:
    from PIL import Image

    theirs = reference_pipeline(reference, ours, checkpoint)
    # The reference samples the image latent with the global RNG; ours takes the VAE's mean: give it the mean.
    encode = theirs.vae.encode
    theirs.vae.encode = lambda x, **kw: types.SimpleNamespace(
        latent_dist=types.SimpleNamespace(sample=lambda: encode(x, **kw).latent_dist.mean)
    )
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    generator = torch.Generator().manual_seed(12)
    theirs.sample_block_noise = lambda b, c, t, h, w: ours.block_noise(torch.Size([b, c, t, h, w]), generator, "cpu")
    with torch.no_grad():
        expected = theirs.generate_i2v(
            prompt=PROMPT, input_image=image, temp=3, num_inference_steps=VIDEO_STEPS, video_guidance_scale=4.0,
            generator=generator, output_type="latent",
        )  # fmt: skip
    mine = ours(
        prompt=PROMPT, image=image, height=64, width=64, num_frames=17, video_num_inference_steps=VIDEO_STEPS,
        video_guidance_scale=4.0, generator=torch.Generator().manual_seed(12), output_type="latent",
    ).frames  # fmt: skip
    report(capsys, "latents of a 3-latent-frame image-to-video generation", (mine - expected).abs().max().item())
    torch.testing.assert_close(mine, expected, rtol=1e-4, atol=1e-4)
