"""Pyramid Flow's causal video VAE (backends/pyramid_flow/vae.py) on the CPU.

The published configuration is checked against the checkpoint's tensor list on the meta device;
everything else runs a tiny random-weight configuration. The equivalence test runs only where
PYRAMID_FLOW_REFERENCE points at a local checkout of github.com/jy0205/Pyramid-Flow.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from backends.pyramid_flow.vae import CausalVideoVAE
from backends.pyramid_flow.weights import WEIGHTS_NAME
from tests.harness import ROOT

pytestmark = pytest.mark.pyramid

# The published tensor list, kept in the repo (a copy of shared/data/, see tests/data/README.md) so it always runs.
MANIFEST = ROOT / "tests" / "data" / "pyramid-flow-miniflux-manifest.json"
TINY = {
    "encoder_out_channels": 8,
    "decoder_in_channels": 8,
    "encoder_block_out_channels": [8, 8, 16, 16],
    "decoder_block_out_channels": [8, 8, 16, 16],
    "encoder_layers_per_block": [1, 1, 1, 1],
    "decoder_layers_per_block": [1, 1, 1, 1],
    "encoder_norm_num_groups": 4,
    "decoder_norm_num_groups": 4,
    "sample_size": 32,  # the tile size: 4 latents, so a 64x96 video is tiled
}
LATENT = TINY["encoder_out_channels"]


def tiny_vae(seed: int = 0) -> CausalVideoVAE:
    torch.manual_seed(seed)
    vae = CausalVideoVAE(**TINY)
    with torch.no_grad():  # norms away from 1 and 0, so that a norm loaded in the wrong place shows
        for name, param in vae.named_parameters():
            if "norm" in name:
                param.add_(torch.randn_like(param) * 0.2)
    return vae.eval()


def video(frames: int, height: int = 32, width: int = 48, seed: int = 1) -> torch.Tensor:
    return torch.rand(1, 3, frames, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def latents(frames: int, height: int = 4, width: int = 6, seed: int = 2) -> torch.Tensor:
    return torch.randn(1, LATENT, frames, height, width, generator=torch.Generator().manual_seed(seed))


def test_published_configuration_builds_the_checkpoint_tensors() -> None:
    manifest = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        vae = CausalVideoVAE(**manifest["configs"]["causal_video_vae"])
    shapes = {name: list(tensor.shape) for name, tensor in vae.state_dict().items()}
    assert shapes == manifest["state_dict_shapes"]["causal_video_vae"]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    vae = tiny_vae()
    vae.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", f"{WEIGHTS_NAME}.safetensors"]

    loaded = CausalVideoVAE.from_pretrained(tmp_path)
    assert loaded.config == vae.config
    z = latents(2)
    assert torch.equal(loaded.decode(z), vae.decode(z))

    half = CausalVideoVAE.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    assert half.decode(z).dtype == torch.bfloat16


def test_loading_is_strict_and_reads_the_bin_layout(tmp_path: Path) -> None:
    vae = tiny_vae()
    vae.save_pretrained(tmp_path)
    weights = tmp_path / f"{WEIGHTS_NAME}.safetensors"
    tensors = load_file(weights)

    save_file({**tensors, "decoder.extra.weight": torch.zeros(1)}, weights)
    with pytest.raises(RuntimeError, match="Unexpected key.*decoder.extra.weight"):
        CausalVideoVAE.from_pretrained(tmp_path)

    save_file({name: t for name, t in tensors.items() if name != "post_quant_conv.conv.bias"}, weights)
    with pytest.raises(RuntimeError, match="Missing key.*post_quant_conv.conv.bias"):
        CausalVideoVAE.from_pretrained(tmp_path)

    # The published folder holds diffusers' pickle file, not safetensors.
    weights.unlink()
    torch.save(tensors, tmp_path / f"{WEIGHTS_NAME}.bin")
    z = latents(2)
    assert torch.equal(CausalVideoVAE.from_pretrained(tmp_path).decode(z), vae.decode(z))

    (tmp_path / f"{WEIGHTS_NAME}.bin").unlink()
    with pytest.raises(FileNotFoundError, match="diffusion_pytorch_model"):
        CausalVideoVAE.from_pretrained(tmp_path)


@pytest.mark.parametrize("frames", [1, 9, 17])
def test_encode_then_decode_shapes(frames: int) -> None:
    vae = tiny_vae()
    z = vae.encode(video(frames))
    assert z.shape == (1, LATENT, 1 + (frames - 1) // 8, 4, 6)
    decoded = vae.decode(z)
    assert decoded.shape == (1, 3, frames, 32, 48)
    assert torch.isfinite(decoded).all()


def test_coding_is_causal_in_time() -> None:
    """Later frames never change earlier latents, nor later latents earlier frames."""
    vae = tiny_vae()
    clip = video(17)
    torch.testing.assert_close(vae.encode(clip[:, :, :9]), vae.encode(clip)[:, :, :2])
    z = latents(3)
    torch.testing.assert_close(vae.decode(z[:, :, :2]), vae.decode(z)[:, :, :9])


def test_chunk_sizes_do_not_change_results() -> None:
    """Coding a few frames at a time, context carried between chunks, equals coding all at once."""
    vae = tiny_vae()
    clip, z = video(33), latents(5)
    vae.encode_window, vae.decode_window = 32, 4  # one chunk each
    whole = vae.encode(clip), vae.decode(z)
    vae.encode_window, vae.decode_window = 8, 1  # 5 chunks each
    chunked = vae.encode(clip), vae.decode(z)
    torch.testing.assert_close(chunked, whole)


def test_tiled_coding() -> None:
    """Tiles are coded alone and blended at their seams, as in the reference: where the frame fits
    one tile the result is unchanged; otherwise it differs from whole frames. With these random
    weights and 4-latent tiles, decode differs by 0.25 on average (max 2.3) for outputs of std
    0.37, encode by 0.12 for latents of std 0.18: measured on the reference's own tiling too,
    which ours equals (the equivalence test)."""
    vae = tiny_vae()
    small_clip, small_z = video(9, 32, 32), latents(3, 4, 4)  # one tile each
    clip, z = video(9, 64, 96), latents(3, 8, 12)
    whole = vae.decode(z)
    untiled_small = vae.encode(small_clip), vae.decode(small_z)

    vae.enable_tiling()
    torch.testing.assert_close((vae.encode(small_clip), vae.decode(small_z)), untiled_small)
    tiled = vae.decode(z)
    assert tiled.shape == whole.shape
    assert vae.encode(clip).shape == (1, LATENT, 2, 8, 12)
    # The top-left 24x24 pixels are the top-left tile's own, untouched by any blend.
    corner = vae.decode(z[..., :4, :4])
    torch.testing.assert_close(tiled[..., :24, :24], corner[..., :24, :24])
    assert not torch.allclose(tiled, whole, atol=1e-3)


@pytest.mark.parametrize(("height", "width"), [(384, 640), (768, 1280)])
def test_tiles_cover_the_published_sizes(height: int, width: int) -> None:
    """The tiling arithmetic at the published tile size (256 px) and frame sizes, with stand-in
    coders that see only their own 8x8 block: tiles, partial ones included, agree on their overlaps,
    so blending them must give back exactly the whole-frame result."""
    frames = video(3, height, width)
    encoded = CausalVideoVAE._tiled(frames, lambda x: torch.nn.functional.avg_pool3d(x, (1, 8, 8)), 256, 32)
    torch.testing.assert_close(encoded, torch.nn.functional.avg_pool3d(frames, (1, 8, 8)))
    z = latents(3, height // 8, width // 8)
    decoded = CausalVideoVAE._tiled(z, lambda x: x.repeat_interleave(8, -2).repeat_interleave(8, -1), 32, 256)
    torch.testing.assert_close(decoded, z.repeat_interleave(8, -2).repeat_interleave(8, -1))


def test_bad_input_is_refused() -> None:
    vae = tiny_vae()
    with pytest.raises(ValueError, match="1 \\+ 8k frames"):
        vae.encode(video(4))
    with pytest.raises(ValueError, match="divisible by 8"):
        vae.encode(video(1, 30, 48))
    with pytest.raises(ValueError, match="encode takes"):
        vae.encode(torch.zeros(1, 4, 1, 32, 32))
    with pytest.raises(ValueError, match="decode takes"):
        vae.decode(torch.zeros(1, LATENT + 1, 1, 4, 4))
    with pytest.raises(ValueError, match="interpolate must be False"):
        CausalVideoVAE(**TINY, interpolate=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'latent_channels'"):
        CausalVideoVAE(**TINY, latent_channels=4)
    with pytest.raises(ValueError, match="tiling needs sample_size"):  # tiles must overlap by whole latents
        CausalVideoVAE(**{**TINY, "sample_size": 48}).enable_tiling()


@pytest.fixture(scope="module")
def reference_vae_class() -> Iterator[type]:
    """The reference's CausalVideoVAE, imported from its checkout with shims for what our
    environment lacks: timm (only `trunc_normal_` is used, for its initialisation) and the
    `video_vae` package's __init__, which imports the training losses."""
    checkout = os.environ.get("PYRAMID_FLOW_REFERENCE")
    if not checkout:
        pytest.skip("PYRAMID_FLOW_REFERENCE is not set (a local checkout of jy0205/Pyramid-Flow)")
    pytest.importorskip("einops", reason="the reference needs einops (requirements-test.txt)")
    # Before the timm shim: diffusers probes for timm when it is first imported.
    pytest.importorskip("diffusers", reason="the reference is built on diffusers (requirements-models.txt)")
    root = Path(checkout).resolve()
    modules_before = set(sys.modules)
    timm = types.ModuleType("timm")
    timm.models = types.ModuleType("timm.models")
    timm.models.hub = types.ModuleType("timm.models.hub")
    timm.models.layers = types.ModuleType("timm.models.layers")
    timm.models.layers.trunc_normal_ = torch.nn.init.trunc_normal_
    timm.models.layers.drop_path = timm.models.layers.to_2tuple = None
    package = types.ModuleType("video_vae")
    package.__path__ = [str(root / "video_vae")]
    sys.modules.update(
        {
            "timm": timm,
            "timm.models": timm.models,
            "timm.models.hub": timm.models.hub,
            "timm.models.layers": timm.models.layers,
            "video_vae": package,
        }
    )
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("video_vae.modeling_causal_vae").CausalVideoVAE
    finally:
        sys.path.remove(str(root))
        for name in set(sys.modules) - modules_before:
            del sys.modules[name]


@pytest.mark.live  # needs PYRAMID_FLOW_REFERENCE, a checkout CI has not (as test_pyramid_reference)
def test_matches_the_reference(reference_vae_class: type, capsys: pytest.CaptureFixture[str]) -> None:
    ours = tiny_vae()
    reference = reference_vae_class(**TINY).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    short_clip, clip, big_clip = video(17), video(33), video(9, 64, 96)
    z, big_z = latents(5), latents(3, 8, 12)

    differences: dict[str, float] = {}

    def compare(name: str, mine: torch.Tensor, theirs: torch.Tensor) -> None:
        differences[name] = (mine - theirs).abs().max().item()
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)

    with torch.no_grad():
        compare("encode 17 frames", ours.encode(short_clip), reference.encode(short_clip).latent_dist.mean)
        compare("encode 33 frames", ours.encode(clip), reference.encode(clip).latent_dist.mean)
        compare("decode 5 latents", ours.decode(z), reference.decode(z).sample)
        compare(
            "decode 5 latents, chunks of 2",
            ours.decode(z),
            reference.decode(z, temporal_chunk=True, window_size=2).sample,
        )
        # Both tile at sample_size (32 px), one latent frame at a time.
        reference.enable_tiling()
        ours.enable_tiling()
        compare(
            "tiled encode 64x96",
            ours.encode(big_clip),
            reference.encode(big_clip, tile_sample_min_size=32).latent_dist.mean,
        )
        compare(
            "tiled decode 64x96",
            ours.decode(big_z),
            reference.decode(big_z, temporal_chunk=True, window_size=1, tile_sample_min_size=32).sample,
        )
    with capsys.disabled():
        print("\nmax |ours - reference|:", ", ".join(f"{name} {value:.2e}" for name, value in differences.items()))
