"""Pyramid Flow's causal video VAE: video <-> latents, 8x smaller in height, width and time.

A video of 1 + 8k frames becomes 1 + k latent frames: the first frame is coded alone (so an image
is a one-frame video), each later latent frame codes 8 frames. `encode` gives the unscaled latent
mean; `decode` takes unscaled latents (the pipeline applies Pyramid Flow's shift and scale).

Weights: the published `causal_video_vae` folder of `rain1011/pyramid-flow-miniflux`, which the
reference loads with diffusers' `ModelMixin.from_pretrained`: `config.json` beside
`diffusion_pytorch_model.bin` (a pickled state dict, read with `weights_only=True`). A
`diffusion_pytorch_model.safetensors` there is preferred; `save_pretrained` writes one. Its 260
tensor names are ours: strict loading, no renaming.

Long videos are always coded a few frames at a time (causal convolutions carry their context from
chunk to chunk, so the result equals coding the whole video at once); `enable_tiling` also cuts
frames into overlapping tiles blended at the seams, as the reference does, for small GPUs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from backends.pyramid_flow.vae_blocks import CausalConv3d, CausalDecoder, CausalEncoder, FrameCarry
from backends.pyramid_flow.weights import WEIGHTS_NAME, load_state_dict

CONFIG_NAME = "config.json"
ENCODER_BLOCK = "DownEncoderBlockCausal3D"
DECODER_BLOCK = "UpDecoderBlockCausal3D"
CONV_TYPE = "causal_vae_conv"


@dataclass(frozen=True)
class CausalVideoVAEConfig:
    """The published `causal_video_vae/config.json`, key for key; the defaults are its values."""

    encoder_in_channels: int = 3
    encoder_out_channels: int = 16
    encoder_layers_per_block: tuple[int, ...] = (2, 2, 2, 2)
    encoder_down_block_types: tuple[str, ...] = (ENCODER_BLOCK,) * 4
    encoder_block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    encoder_spatial_down_sample: tuple[bool, ...] = (True, True, True, False)
    encoder_temporal_down_sample: tuple[bool, ...] = (True, True, True, False)
    encoder_block_dropout: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    encoder_act_fn: str = "silu"
    encoder_norm_num_groups: int = 32
    encoder_double_z: bool = True
    encoder_type: str = CONV_TYPE
    decoder_in_channels: int = 16
    decoder_out_channels: int = 3
    decoder_layers_per_block: tuple[int, ...] = (3, 3, 3, 3)
    decoder_up_block_types: tuple[str, ...] = (DECODER_BLOCK,) * 4
    decoder_block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    decoder_spatial_up_sample: tuple[bool, ...] = (True, True, True, False)
    decoder_temporal_up_sample: tuple[bool, ...] = (True, True, True, False)
    decoder_block_dropout: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    decoder_act_fn: str = "silu"
    decoder_norm_num_groups: int = 32
    decoder_type: str = CONV_TYPE
    sample_size: int = 256  # pixels; also the tile size of `enable_tiling`
    scaling_factor: float = 0.13025  # kept for the file; Pyramid Flow's pipeline uses its own shift/scale
    add_post_quant_conv: bool = True
    interpolate: bool = False
    downsample_scale: int = 8

    def __post_init__(self) -> None:
        for field in fields(self):  # JSON gives lists
            value = getattr(self, field.name)
            if isinstance(value, list):
                object.__setattr__(self, field.name, tuple(value))
        # The published checkpoint uses one kind of each part; the reference implements no other.
        wanted: dict[str, Any] = {
            "encoder_down_block_types": (ENCODER_BLOCK,) * len(self.encoder_block_out_channels),
            "decoder_up_block_types": (DECODER_BLOCK,) * len(self.decoder_block_out_channels),
            "encoder_type": CONV_TYPE,
            "decoder_type": CONV_TYPE,
            "encoder_act_fn": "silu",
            "decoder_act_fn": "silu",
            "encoder_double_z": True,
            "add_post_quant_conv": True,
            "interpolate": False,
            "decoder_in_channels": self.encoder_out_channels,
            "decoder_spatial_up_sample": self.encoder_spatial_down_sample,
            "decoder_temporal_up_sample": self.encoder_temporal_down_sample,
        }
        for name, value in wanted.items():
            if getattr(self, name) != value:
                raise ValueError(f"causal video VAE: {name} must be {value!r}, not {getattr(self, name)!r}")
        if 2 ** sum(self.encoder_spatial_down_sample) != self.downsample_scale:
            raise ValueError("causal video VAE: downsample_scale must be 2 ** (number of spatial down samples)")

    @property
    def time_scale(self) -> int:
        return 2 ** sum(self.encoder_temporal_down_sample)


class CausalVideoVAE(nn.Module):
    """The encoder, the decoder and the 1x1 convolutions around the latents, named as published."""

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self.config = CausalVideoVAEConfig(**config)
        c = self.config
        self.encoder = CausalEncoder(
            c.encoder_in_channels,
            c.encoder_out_channels,
            c.encoder_block_out_channels,
            c.encoder_layers_per_block,
            c.encoder_spatial_down_sample,
            c.encoder_temporal_down_sample,
            c.encoder_norm_num_groups,
            c.encoder_block_dropout,
        )
        self.decoder = CausalDecoder(
            c.decoder_in_channels,
            c.decoder_out_channels,
            c.decoder_block_out_channels,
            c.decoder_layers_per_block,
            c.decoder_spatial_up_sample,
            c.decoder_temporal_up_sample,
            c.decoder_norm_num_groups,
            c.decoder_block_dropout,
        )
        self.quant_conv = CausalConv3d(2 * c.encoder_out_channels, 2 * c.encoder_out_channels, 1)
        self.post_quant_conv = CausalConv3d(c.decoder_in_channels, c.decoder_in_channels, 1)
        # Frames coded at once after a first chunk of one frame more (the reference's `window_size`):
        # pixel frames for encode (a multiple of the time scale), latent frames for decode.
        self.encode_window = 2 * c.time_scale
        self.decode_window = 2
        self.tile_size: int | None = None  # pixels; None: whole frames

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: torch.dtype = torch.float32) -> CausalVideoVAE:
        folder = Path(folder)
        config = json.loads((folder / CONFIG_NAME).read_text())
        with torch.device("meta"):  # no random init of weights about to be replaced
            vae = cls(**{key: value for key, value in config.items() if not key.startswith("_")})
        vae.load_state_dict(load_state_dict(folder), strict=True, assign=True)
        return vae.to(dtype).eval()

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the published layout (what `from_pretrained` and the reference both load)."""
        from safetensors.torch import save_file  # here, like load_file: the model itself needs torch only

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"_class_name": "CausalVideoVAE", **asdict(self.config)}
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        save_file(self.state_dict(), folder / f"{WEIGHTS_NAME}.safetensors")

    def enable_tiling(self) -> None:
        """Decode (and encode) frames in overlapping tiles of `sample_size` pixels, one latent frame
        at a time: the reference's low-memory settings (its `save_memory=True`)."""
        if self.config.sample_size % (4 * self.config.downsample_scale):
            raise ValueError("causal video VAE: tiling needs sample_size to be a multiple of 4 * downsample_scale")
        self.tile_size = self.config.sample_size
        self.decode_window = 1

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.conv_in.conv.weight.dtype

    @torch.no_grad()
    def encode(self, video: Tensor) -> Tensor:
        """[B, 3, 1 + 8k, H, W] in [-1, 1] (H, W multiples of 8) -> latent mean [B, 16, 1 + k, H/8, W/8]."""
        c = self.config
        if video.ndim != 5 or video.shape[1] != c.encoder_in_channels:
            raise ValueError(f"causal video VAE: encode takes [B, {c.encoder_in_channels}, T, H, W], not {video.shape}")
        frames, height, width = video.shape[2:]
        if (frames - 1) % c.time_scale or height % c.downsample_scale or width % c.downsample_scale:
            raise ValueError(
                f"causal video VAE: encode needs 1 + {c.time_scale}k frames and a size divisible by "
                f"{c.downsample_scale}, not {frames} frames of {width}x{height}"
            )
        video = video.to(self.dtype)
        if self.tile_size is not None:
            return self._tiled(video, self._encode_tile, self.tile_size, self.tile_size // c.downsample_scale)
        return self._encode_tile(video)

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        """Unscaled latents [B, 16, 1 + k, h, w] -> [B, 3, 1 + 8k, 8h, 8w], nominally in [-1, 1] (not clamped)."""
        c = self.config
        if latents.ndim != 5 or latents.shape[1] != c.decoder_in_channels:
            raise ValueError(
                f"causal video VAE: decode takes [B, {c.decoder_in_channels}, T, h, w], not {latents.shape}"
            )
        latents = latents.to(self.dtype)
        if self.tile_size is not None:
            return self._tiled(latents, self._decode_tile, self.tile_size // c.downsample_scale, self.tile_size)
        return self._decode_tile(latents)

    def _encode_tile(self, video: Tensor) -> Tensor:
        def run(frames: Tensor, carry: FrameCarry) -> Tensor:
            return self.quant_conv(self.encoder(frames, carry), carry)

        moments = _in_chunks(run, video, self.encode_window)
        return moments[:, : self.config.encoder_out_channels]  # the mean; the log-variance follows

    def _decode_tile(self, latents: Tensor) -> Tensor:
        def run(frames: Tensor, carry: FrameCarry) -> Tensor:
            return self.decoder(self.post_quant_conv(frames, carry), carry)

        return _in_chunks(run, latents, self.decode_window)

    @staticmethod
    def _tiled(x: Tensor, code: Callable[[Tensor], Tensor], tile_in: int, tile_out: int) -> Tensor:
        """Code overlapping square tiles (a quarter overlap) and blend each into the tiles above and
        to its left, in raster order, as the reference does (its tiles are then close, not equal,
        to coding the whole frame: attention and padding see one tile)."""
        height, width = x.shape[-2:]
        if height <= tile_in and width <= tile_in:
            return code(x)
        stride = tile_in * 3 // 4
        blend = tile_out // 4
        keep = tile_out - blend
        grid = [
            [code(x[..., top : top + tile_in, left : left + tile_in]) for left in range(0, width, stride)]
            for top in range(0, height, stride)
        ]
        for i, row in enumerate(grid):
            for j, tile in enumerate(row):
                if i:
                    tile = _blend(grid[i - 1][j], tile, blend, dim=-2)
                if j:
                    tile = _blend(row[j - 1], tile, blend, dim=-1)
                row[j] = tile
        return torch.cat([torch.cat([tile[..., :keep, :keep] for tile in row], dim=-1) for row in grid], dim=-2)


def _in_chunks(run: Callable[[Tensor, FrameCarry], Tensor], frames: Tensor, window: int) -> Tensor:
    """Run a causal stack over frames[: window + 1], then `window` frames at a time."""
    carry: FrameCarry = {}
    outputs = [run(frames[:, :, : window + 1], carry)]
    for start in range(window + 1, frames.shape[2], window):
        outputs.append(run(frames[:, :, start : start + window], carry))
    return torch.cat(outputs, dim=2)


def _blend(before: Tensor, after: Tensor, extent: int, dim: int) -> Tensor:
    """`after` with its first `extent` rows (dim -2) or columns (dim -1) faded in linearly from the
    last ones of `before`, which cover the same pixels."""
    extent = min(before.shape[dim], after.shape[dim], extent)
    weight = torch.arange(extent, device=after.device, dtype=torch.float32) / extent
    if dim == -2:
        weight = weight[:, None]
    faded = before.narrow(dim, before.shape[dim] - extent, extent) * (1 - weight)
    faded = faded + after.narrow(dim, 0, extent) * weight
    return torch.cat([faded.to(after.dtype), after.narrow(dim, extent, after.shape[dim] - extent)], dim=dim)
