"""The layers of Pyramid Flow's causal video VAE (torch only: no diffusers, no einops).

Every convolution is causal in time: an output frame depends on its own input frame and earlier
ones, never on later ones. So the first frame is coded on its own, like an image, and a long video
can be coded chunk by chunk, each causal convolution handing the input frames its next window
still needs to the next chunk (a `FrameCarry`). Normalisation and attention work within a frame.

Module and attribute names are the published checkpoint's (`conv.conv`, `downsamplers.0`,
`attentions.0.to_out.0`, ...), so its state dict loads with strict key matching and no renaming.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NORM_EPS = 1e-6

FrameCarry = dict[nn.Module, Tensor]
"""Per causal convolution, its last input frames that the next chunk's first window still needs."""


class CausalConv3d(nn.Module):
    """A 3D convolution padded in front in time (zeros before the first frame) and evenly in space."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: tuple[int, int, int] = (1, 1, 1)
    ) -> None:
        super().__init__()
        self.time_pad = kernel_size - 1
        self.time_stride = stride[0]
        space_pad = kernel_size // 2
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=(0, space_pad, space_pad))

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        if self.time_pad:
            past = carry.pop(self, None) if carry is not None else None
            x = F.pad(x, (0, 0, 0, 0, self.time_pad, 0)) if past is None else torch.cat([past, x], dim=2)
            if carry is not None:
                # The next chunk's first window starts where this chunk's windows stop; a copy, so
                # that the carry does not keep this chunk's whole input alive.
                windows = (x.shape[2] - self.time_pad - 1) // self.time_stride + 1
                carry[self] = x[:, :, windows * self.time_stride :].clone()
        return self.conv(x)


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm over each frame on its own, so that no frame's statistics depend on later frames."""

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        frames = super().forward(x.transpose(1, 2).reshape(b * t, c, h, w))
        return frames.reshape(b, t, c, h, w).transpose(1, 2)


class CausalResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = FrameGroupNorm(groups, in_channels, eps=NORM_EPS)
        self.conv1 = CausalConv3d(in_channels, out_channels, 3)
        self.norm2 = FrameGroupNorm(groups, out_channels, eps=NORM_EPS)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CausalConv3d(out_channels, out_channels, 3)
        self.conv_shortcut = CausalConv3d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)), carry)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))), carry)
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x, carry)
        return x + h


class FrameAttention(nn.Module):
    """Single-head self-attention among the positions of one frame, added to its input."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=NORM_EPS)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])  # a list: the checkpoint says `to_out.0`

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h * w)
        tokens = self.group_norm(frames).transpose(1, 2)
        q, k, v = (proj(tokens).unsqueeze(1) for proj in (self.to_q, self.to_k, self.to_v))
        out = self.to_out[0](F.scaled_dot_product_attention(q, k, v).squeeze(1))
        return x + out.transpose(1, 2).reshape(b, t, c, h, w).transpose(1, 2)


class CausalMidBlock(nn.Module):
    def __init__(self, channels: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([CausalResnetBlock(channels, channels, groups, dropout) for _ in range(2)])
        self.attentions = nn.ModuleList([FrameAttention(channels, groups)])

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        x = self.resnets[0](x, carry)
        x = self.attentions[0](x)
        return self.resnets[1](x, carry)


class CausalDownsample(nn.Module):
    """Halves height and width (stride (1, 2, 2)) or time (stride (2, 1, 1)) with a strided conv."""

    def __init__(self, channels: int, stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv = CausalConv3d(channels, channels, 3, stride=stride)

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        return self.conv(x, carry)


class CausalSpatialUpsample(nn.Module):
    """Doubles height and width: a conv makes 4x the channels, which become 2x2 pixels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = CausalConv3d(channels, channels * 4, 3)

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        x = self.conv(x, carry)
        b, c4, t, h, w = x.shape
        x = x.reshape(b, c4 // 4, 2, 2, t, h, w).permute(0, 1, 4, 5, 2, 6, 3)
        return x.reshape(b, c4 // 4, t, h * 2, w * 2)


class CausalTemporalUpsample(nn.Module):
    """Doubles the frames: a conv makes 2x the channels, which become 2 frames. The video's first
    frame stands alone (1 + 2k frames from 1 + k), so its first copy is dropped."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = CausalConv3d(channels, channels * 2, 3)

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        starts_video = carry is None or self.conv not in carry
        x = self.conv(x, carry)
        b, c2, t, h, w = x.shape
        x = x.reshape(b, c2 // 2, 2, t, h, w).transpose(2, 3).reshape(b, c2 // 2, t * 2, h, w)
        return x[:, :, 1:] if starts_video else x


class CausalDownBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int,
        groups: int,
        dropout: float,
        spatial: bool,
        temporal: bool,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            CausalResnetBlock(in_channels if i == 0 else out_channels, out_channels, groups, dropout)
            for i in range(num_layers)
        )
        self.downsamplers = nn.ModuleList([CausalDownsample(out_channels, (1, 2, 2))] if spatial else [])
        self.temporal_downsamplers = nn.ModuleList([CausalDownsample(out_channels, (2, 1, 1))] if temporal else [])

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        for layer in (*self.resnets, *self.downsamplers, *self.temporal_downsamplers):
            x = layer(x, carry)
        return x


class CausalUpBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_layers: int,
        groups: int,
        dropout: float,
        spatial: bool,
        temporal: bool,
    ) -> None:
        super().__init__()
        self.resnets = nn.ModuleList(
            CausalResnetBlock(in_channels if i == 0 else out_channels, out_channels, groups, dropout)
            for i in range(num_layers)
        )
        self.upsamplers = nn.ModuleList([CausalSpatialUpsample(out_channels)] if spatial else [])
        self.temporal_upsamplers = nn.ModuleList([CausalTemporalUpsample(out_channels)] if temporal else [])

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        for layer in (*self.resnets, *self.upsamplers, *self.temporal_upsamplers):
            x = layer(x, carry)
        return x


class CausalEncoder(nn.Module):
    """Pixels -> the moments (mean, then log-variance) of the latent distribution."""

    def __init__(
        self,
        in_channels: int,
        latent_channels: int,
        block_out_channels: Sequence[int],
        layers_per_block: Sequence[int],
        spatial_down_sample: Sequence[bool],
        temporal_down_sample: Sequence[bool],
        norm_num_groups: int,
        block_dropout: Sequence[float],
    ) -> None:
        super().__init__()
        self.conv_in = CausalConv3d(in_channels, block_out_channels[0], 3)
        self.down_blocks = nn.ModuleList(
            CausalDownBlock(
                block_out_channels[max(i - 1, 0)],
                block_out_channels[i],
                layers_per_block[i],
                norm_num_groups,
                block_dropout[i],
                spatial_down_sample[i],
                temporal_down_sample[i],
            )
            for i in range(len(block_out_channels))
        )
        self.mid_block = CausalMidBlock(block_out_channels[-1], norm_num_groups, block_dropout[-1])
        self.conv_norm_out = FrameGroupNorm(norm_num_groups, block_out_channels[-1], eps=NORM_EPS)
        self.conv_out = CausalConv3d(block_out_channels[-1], 2 * latent_channels, 3)

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        x = self.conv_in(x, carry)
        for block in self.down_blocks:
            x = block(x, carry)
        x = self.mid_block(x, carry)
        return self.conv_out(F.silu(self.conv_norm_out(x)), carry)


class CausalDecoder(nn.Module):
    """Latents -> pixels. Blocks are listed from the latent end, so channels run in reverse."""

    def __init__(
        self,
        latent_channels: int,
        out_channels: int,
        block_out_channels: Sequence[int],
        layers_per_block: Sequence[int],
        spatial_up_sample: Sequence[bool],
        temporal_up_sample: Sequence[bool],
        norm_num_groups: int,
        block_dropout: Sequence[float],
    ) -> None:
        super().__init__()
        channels = list(reversed(block_out_channels))
        self.conv_in = CausalConv3d(latent_channels, channels[0], 3)
        self.mid_block = CausalMidBlock(channels[0], norm_num_groups, block_dropout[-1])
        self.up_blocks = nn.ModuleList(
            CausalUpBlock(
                channels[max(i - 1, 0)],
                channels[i],
                layers_per_block[i],
                norm_num_groups,
                block_dropout[i],
                spatial_up_sample[i],
                temporal_up_sample[i],
            )
            for i in range(len(channels))
        )
        self.conv_norm_out = FrameGroupNorm(norm_num_groups, block_out_channels[0], eps=NORM_EPS)
        self.conv_out = CausalConv3d(block_out_channels[0], out_channels, 3)

    def forward(self, x: Tensor, carry: FrameCarry | None = None) -> Tensor:
        x = self.conv_in(x, carry)
        x = self.mid_block(x, carry)
        for block in self.up_blocks:
            x = block(x, carry)
        return self.conv_out(F.silu(self.conv_norm_out(x)), carry)
