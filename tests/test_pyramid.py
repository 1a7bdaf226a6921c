"""Pyramid Flow's transformer, scheduler and pipeline, on the published tensor list and a tiny checkpoint.

The tiny checkpoint (tests/tiny_pyramid.py) is written in the official folder layout and loaded
through `PyramidFlowPipeline.from_pretrained`, the path the worker takes for the published weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="model dependencies are not installed (requirements-models.txt)")

from backends.base import Cancelled  # noqa: E402
from backends.pyramid_flow import PyramidFlowBackend  # noqa: E402
from backends.pyramid_flow.pipeline import PyramidFlowPipeline  # noqa: E402
from backends.pyramid_flow.scheduler import PyramidFlowScheduler  # noqa: E402
from backends.pyramid_flow.transformer import PyramidFluxTransformer  # noqa: E402
from dailies.contract.settings import Settings  # noqa: E402
from dailies.contract.spec import JobSpec  # noqa: E402
from tests.harness import ROOT  # noqa: E402
from tests.tiny_pyramid import FOLDERS, save_tiny_pyramid, tiny_transformer  # noqa: E402

pytestmark = pytest.mark.pyramid

# The published tensor list, kept in the repo (a copy of shared/data/, see tests/data/README.md) so it always runs.
MANIFEST = ROOT / "tests" / "data" / "pyramid-flow-miniflux-manifest.json"
SIZE = dict(height=64, width=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pyramid(tmp_path_factory.mktemp("pyramid"))


@pytest.fixture(scope="module")
def pipe(tiny: Path) -> PyramidFlowPipeline:
    pipe = PyramidFlowPipeline.from_pretrained(str(tiny / FOLDERS["384p"]))
    pipe.vae.enable_tiling()
    return pipe


def generate(pipe: PyramidFlowPipeline, seed: int, **args):
    args = {"prompt": "a red boat on the sea", **SIZE, "num_frames": 9, "num_inference_steps": 2, **args}
    args.setdefault("video_num_inference_steps", 1)
    return pipe(generator=torch.Generator().manual_seed(seed), **args).frames


def test_published_configuration_builds_exactly_the_checkpoint_tensors() -> None:
    manifest = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        model = PyramidFluxTransformer.from_config(manifest["configs"]["diffusion_transformer"])
    ours = {name: list(tensor.shape) for name, tensor in model.state_dict().items()}
    published = manifest["state_dict_shapes"]["diffusion_transformer"]
    assert sorted(set(ours) ^ set(published)) == []
    assert {name: shape for name, shape in ours.items() if published[name] != shape} == {}
    assert len(ours) == 496 and sum(np.prod(s) for s in ours.values()) == 1_972_059_200


def test_loading_is_strict_and_reads_both_file_layouts(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model = tiny_transformer(seed=3)
    model.save_pretrained(tmp_path)
    loaded = PyramidFluxTransformer.from_pretrained(tmp_path)
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )

    weights = tmp_path / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    # The pickled layout loads too (read with weights_only).
    weights.unlink()
    torch.save(state, tmp_path / "diffusion_pytorch_model.bin")
    from_bin = PyramidFluxTransformer.from_pretrained(tmp_path)
    assert torch.equal(from_bin.proj_out.weight, model.proj_out.weight)
    (tmp_path / "diffusion_pytorch_model.bin").unlink()
    save_file({**state, "transformer_blocks.0.attn.extra.weight": torch.zeros(1)}, weights)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        PyramidFluxTransformer.from_pretrained(tmp_path)
    state.pop("proj_out.bias")
    save_file(state, weights)
    with pytest.raises(RuntimeError, match="Missing key"):
        PyramidFluxTransformer.from_pretrained(tmp_path)


def test_scheduler_stages_cover_the_flow_once() -> None:
    scheduler = PyramidFlowScheduler()
    bounds = scheduler.timestep_bounds
    assert bounds[0][0] == 1000 and bounds[0][0] > bounds[0][1] > bounds[1][0] > bounds[1][1] > bounds[2][0] > 0
    schedule = scheduler.schedule(20, 1)
    assert len(schedule.timesteps) == 20 and len(schedule.sigmas) == 21 and schedule.sigmas[-1] == 0
    # Renoising shrinks the upsampled latent to the signal share the next stage starts from.
    for stage in (1, 2):
        alpha, beta = scheduler.renoise_coefficients(stage)
        assert 0 < alpha < 1 and 0 < beta < 1


def test_block_noise_is_zero_sum_in_each_2x2_block(pipe: PyramidFlowPipeline) -> None:
    noise = pipe.block_noise(torch.Size([1, 2, 1, 64, 64]), torch.Generator().manual_seed(0), torch.device("cpu"))
    blocks = noise.reshape(1, 2, 1, 32, 2, 32, 2)
    assert blocks.sum(dim=(4, 6)).abs().max() < 1e-5
    assert abs(noise.var().item() - 1.0) < 0.05  # each entry: the covariance's diagonal, 1


def test_same_seed_same_frames_and_the_frames_follow_the_prompt(pipe: PyramidFlowPipeline) -> None:
    first = generate(pipe, seed=4)
    assert first.shape == (1, 9, 64, 64, 3) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0 and first.std() > 0.01
    np.testing.assert_array_equal(first, generate(pipe, seed=4))
    assert not np.array_equal(first, generate(pipe, seed=5))
    assert not np.array_equal(first, generate(pipe, seed=4, prompt="the city at night"))


def test_step_callbacks_count_every_stage_of_every_frame_and_cancel_stops(pipe: PyramidFlowPipeline) -> None:
    seen: list[int] = []

    def count(_pipe, step: int, timestep, tensors: dict) -> dict:
        seen.append(step)
        return tensors

    before = generate(pipe, seed=4)
    generate(
        pipe, seed=1, num_frames=17, num_inference_steps=2, video_num_inference_steps=1, callback_on_step_end=count
    )
    # 3 stages x 2 steps for the first latent frame, 3 x 1 for each of the two later ones.
    assert seen == list(range(12))
    backend = PyramidFlowBackend(Settings.from_env({"DAILIES_DEVICE": "cpu"}))
    request = JobSpec(
        id="x",
        backend=backend.name,
        prompt="x",
        negative_prompt="",
        seed=1,
        width=64,
        height=64,
        num_frames=17,
        fps=24,
        params={"steps": 2, "video_steps": 1},
    )
    assert backend.total_steps(request, backend.rules("384p"), 2) == len(seen)

    def cancel_at_5(_pipe, step: int, timestep, tensors: dict) -> dict:
        if step == 5:
            raise Cancelled()
        return tensors

    with pytest.raises(Cancelled):
        generate(pipe, seed=1, callback_on_step_end=cancel_at_5)
    # The pipeline is whole afterwards: the same call gives the same frames as before the cancel.
    np.testing.assert_array_equal(generate(pipe, seed=4), before)


def test_image_to_video_starts_from_the_image(pipe: PyramidFlowPipeline) -> None:
    from PIL import Image

    red, blue = Image.new("RGB", (64, 64), (220, 40, 40)), Image.new("RGB", (64, 64), (40, 40, 220))
    from_red = generate(pipe, seed=2, image=red)
    from_blue = generate(pipe, seed=2, image=blue)
    assert from_red.shape == (1, 9, 64, 64, 3)
    assert not np.array_equal(from_red, from_blue)
    np.testing.assert_array_equal(from_red, generate(pipe, seed=2, image=red))
    # The first frame is the image through the VAE: redder from the red image than from the blue one.
    red_first, blue_first = from_red[0, 0].mean(axis=(0, 1)), from_blue[0, 0].mean(axis=(0, 1))
    assert red_first[0] - red_first[2] > blue_first[0] - blue_first[2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"height": 96}, "multiples of 64"),
        ({"num_frames": 10}, r"8k\+1"),
        ({"num_frames": 1}, r"8k\+1"),
        ({"num_inference_steps": [2, 2]}, "3 of them"),
        ({"video_num_inference_steps": 0}, "positive"),
        ({"prompt": " "}, "non-empty"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(pipe: PyramidFlowPipeline, change: dict, message: str) -> None:
    calls: list[int] = []
    with pytest.raises(ValueError, match=message):
        generate(pipe, seed=1, callback_on_step_end=lambda *a: calls.append(1), **change)
    assert calls == []


def test_the_768p_checkpoint_is_its_own_transformer_folder(tiny: Path) -> None:
    high = PyramidFlowPipeline.from_pretrained(str(tiny / FOLDERS["768p"]))
    low = PyramidFlowPipeline.from_pretrained(str(tiny / FOLDERS["384p"]))
    assert not torch.equal(high.transformer.proj_out.weight, low.transformer.proj_out.weight)
    with pytest.raises(ValueError, match="2 transformer folders"):
        PyramidFlowPipeline.from_pretrained(str(tiny))


@pytest.mark.parametrize("offload", ["model", "sequential"])
def test_offload_gives_the_same_frames(tiny: Path, pipe: PyramidFlowPipeline, offload: str) -> None:
    # The CPU stands in for the GPU: the modules move (model offload) or stream through accelerate's
    # hooks (sequential offload, the VAE's encode and decode included) and the frames stay the same
    # (to float rounding: moved tensors may take other CPU kernels).
    from PIL import Image

    image = Image.new("RGB", (64, 64), (30, 160, 90))
    expected = generate(pipe, seed=6), generate(pipe, seed=6, image=image)
    offloaded = PyramidFlowPipeline.from_pretrained(str(tiny / FOLDERS["384p"]))
    offloaded.vae.enable_tiling()
    getattr(offloaded, f"enable_{offload}_cpu_offload")(device="cpu")
    np.testing.assert_allclose(generate(offloaded, seed=6), expected[0], atol=1e-5)
    np.testing.assert_allclose(generate(offloaded, seed=6, image=image), expected[1], atol=1e-5)


def test_missing_weights_raise_the_errors_the_runtime_reports(tmp_path: Path, tiny: Path) -> None:
    # The model runtime turns OSError and ValueError into "could not load the Pyramid Flow weights".
    with pytest.raises((OSError, ValueError)):
        PyramidFlowPipeline.from_pretrained(str(tmp_path / "nowhere" / FOLDERS["384p"]))
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(tiny, partial, ignore=shutil.ignore_patterns("causal_video_vae"))
    with pytest.raises(OSError):
        PyramidFlowPipeline.from_pretrained(str(partial / FOLDERS["384p"]))
    # Text encoders load strictly too: CLIP-L's place holds a CLIPTextModel (pooled output, no projection).
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny / "causal_video_vae", partial / "causal_video_vae")
    weights = next((partial / "text_encoder").glob("*.safetensors"))
    save_file({**load_file(weights), "text_projection.weight": torch.zeros(32, 32)}, weights)
    with pytest.raises(ValueError, match="text_encoder does not match CLIPTextModel"):
        PyramidFlowPipeline.from_pretrained(str(partial / FOLDERS["384p"]))
