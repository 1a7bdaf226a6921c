"""The Pyramid Flow diffusion transformer (miniflux): a Flux-style MMDiT over a pyramid of latent clips.

One forward pass sees the text tokens, the compressed history of earlier latent frames (clips at
lower resolutions, oldest first) and the clip being denoised, and returns the velocity of that
last clip only. Attention is causal in time: a token sees its own latent frame and earlier ones.
Parameter names are those of the official checkpoint, so its weights load with strict key
matching and no renaming.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backends.pyramid_flow.weights import load_state_dict

PATCH = 2  # the official code patches latents 2x2 whatever `patch_size` says (that only sizes proj_out)
ROPE_THETA = 10000
TIMESTEP_CHANNELS = 256
# Options of the reference's training code, present in the published config; inference has no use for them.
TRAINING_OPTIONS = ("use_flash_attn", "use_gradient_checkpointing", "gradient_checkpointing_ratio")


def rope_rotations(positions: Tensor, axes_dim: list[int]) -> Tensor:
    """Rotation matrices [B, S, 1, head_dim / 2, 2, 2] for positions [B, S, 3] (time, row, column)."""
    rotations = []
    for axis, dim in enumerate(axes_dim):
        omega = 1.0 / ROPE_THETA ** (torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
        angles = positions[..., axis].double()[..., None] * omega
        cos, sin = angles.cos(), angles.sin()
        rotations.append(torch.stack([cos, -sin, sin, cos], dim=-1).view(*angles.shape, 2, 2).float())
    return torch.cat(rotations, dim=-3).unsqueeze(2)


def apply_rope(x: Tensor, rotations: Tensor) -> Tensor:
    """Rotate each pair of channels of x [B, S, heads, head_dim] by its position's angle."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 1, 2)
    rotated = rotations[..., 0] * pairs[..., 0] + rotations[..., 1] * pairs[..., 1]
    return rotated.reshape(x.shape).type_as(x)


def timestep_embedding(timestep: Tensor, channels: int = TIMESTEP_CHANNELS) -> Tensor:
    """Sinusoidal features [B, channels], cosines first (the flip_sin_to_cos layout of diffusers)."""
    half = channels // 2
    frequencies = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=timestep.device) / half)
    angles = timestep[:, None].float() * frequencies[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def attend(query: Tensor, key: Tensor, value: Tensor, rotations: Tensor, mask: Tensor) -> Tensor:
    """Masked attention over [B, S, heads, head_dim] after RoPE; returns [B, S, heads * head_dim]."""
    query, key = apply_rope(query, rotations), apply_rope(key, rotations)
    out = F.scaled_dot_product_attention(
        query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), attn_mask=mask
    )
    return out.transpose(1, 2).flatten(2)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        normed = x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            normed = normed.to(self.weight.dtype)
        return normed * self.weight


class MLP(nn.Module):
    """Linear, SiLU, linear: the timestep and pooled-text embedders."""

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_features, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class TimeTextEmbedding(nn.Module):
    """The conditioning vector: timestep features plus the pooled CLIP embedding."""

    def __init__(self, dim: int, pooled_projection_dim: int) -> None:
        super().__init__()
        self.timestep_embedder = MLP(TIMESTEP_CHANNELS, dim)
        self.text_embedder = MLP(pooled_projection_dim, dim)

    def forward(self, timestep: Tensor, pooled: Tensor) -> Tensor:
        return self.timestep_embedder(timestep_embedding(timestep).to(pooled.dtype)) + self.text_embedder(pooled)


class AdaNorm(nn.Module):
    """A LayerNorm without weights whose shift, scale and gates come from the conditioning vector."""

    def __init__(self, dim: int, chunks: int) -> None:
        super().__init__()
        self.chunks = chunks
        self.linear = nn.Linear(dim, chunks * dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def forward(self, temb: Tensor) -> tuple[Tensor, ...]:
        """The modulation vectors, each [B, 1, dim] to broadcast over tokens."""
        return self.linear(F.silu(temb))[:, None].chunk(self.chunks, dim=-1)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return x * (1 + scale) + shift


class GELUProjection(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, inner)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    def __init__(self, dim: int, inner: int) -> None:
        super().__init__()
        # net.0 and net.2 are the checkpoint's names; index 1 was a dropout.
        self.net = nn.Sequential(GELUProjection(dim, inner), nn.Identity(), nn.Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Attention(nn.Module):
    """Self-attention with RMS-normed queries and keys; `joint` adds the text stream's own projections."""

    def __init__(self, dim: int, heads: int, head_dim: int, joint: bool) -> None:
        super().__init__()
        self.heads = heads
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, heads * head_dim) for _ in range(3))
        self.norm_q, self.norm_k = RMSNorm(head_dim), RMSNorm(head_dim)
        if joint:
            self.add_q_proj, self.add_k_proj, self.add_v_proj = (nn.Linear(dim, heads * head_dim) for _ in range(3))
            self.norm_added_q, self.norm_added_k = RMSNorm(head_dim), RMSNorm(head_dim)
            self.to_out = nn.ModuleList([nn.Linear(heads * head_dim, dim)])
            self.to_add_out = nn.Linear(heads * head_dim, dim)

    def _heads(self, x: Tensor) -> Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, -1)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self._heads(self.to_q(x)), self._heads(self.to_k(x)), self._heads(self.to_v(x))
        return self.norm_q(q), self.norm_k(k), v

    def forward(self, x: Tensor, rotations: Tensor, mask: Tensor) -> Tensor:
        """Single-stream attention over x (text tokens first, then video)."""
        return attend(*self.qkv(x), rotations, mask)

    def joint(self, x: Tensor, context: Tensor, rotations: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attention over [context, x] with each stream's projections; returns both streams' outputs."""
        q, k, v = self.qkv(x)
        cq = self.norm_added_q(self._heads(self.add_q_proj(context)))
        ck = self.norm_added_k(self._heads(self.add_k_proj(context)))
        cv = self._heads(self.add_v_proj(context))
        out = attend(torch.cat([cq, q], 1), torch.cat([ck, k], 1), torch.cat([cv, v], 1), rotations, mask)
        length = context.shape[1]
        return self.to_out[0](out[:, length:]), self.to_add_out(out[:, :length])


class DoubleStreamBlock(nn.Module):
    """Text and video keep their own weights and attend jointly (MMDiT)."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.norm1 = AdaNorm(dim, 6)
        self.norm1_context = AdaNorm(dim, 6)
        self.attn = Attention(dim, heads, head_dim, joint=True)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ff = FeedForward(dim, 4 * dim)
        self.norm2_context = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ff_context = FeedForward(dim, 4 * dim)

    def forward(
        self, x: Tensor, context: Tensor, temb: Tensor, rotations: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        shift, scale, gate, shift_mlp, scale_mlp, gate_mlp = self.norm1(temb)
        c_shift, c_scale, c_gate, c_shift_mlp, c_scale_mlp, c_gate_mlp = self.norm1_context(temb)
        attn, context_attn = self.attn.joint(
            modulate(self.norm1.norm(x), shift, scale),
            modulate(self.norm1_context.norm(context), c_shift, c_scale),
            rotations,
            mask,
        )
        x = x + gate * attn
        x = x + gate_mlp * self.ff(modulate(self.norm2(x), shift_mlp, scale_mlp))
        context = context + c_gate * context_attn
        context = context + c_gate_mlp * self.ff_context(
            modulate(self.norm2_context(context), c_shift_mlp, c_scale_mlp)
        )
        return x, context


class SingleStreamBlock(nn.Module):
    """Text and video tokens as one sequence; attention and MLP in parallel."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        inner = int(dim * mlp_ratio)
        self.norm = AdaNorm(dim, 3)
        self.proj_mlp = nn.Linear(dim, inner)
        self.proj_out = nn.Linear(dim + inner, dim)
        self.attn = Attention(dim, heads, head_dim, joint=False)

    def forward(self, x: Tensor, temb: Tensor, rotations: Tensor, mask: Tensor) -> Tensor:
        shift, scale, gate = self.norm(temb)
        h = modulate(self.norm.norm(x), shift, scale)
        mlp = F.gelu(self.proj_mlp(h), approximate="tanh")
        return x + gate * self.proj_out(torch.cat([self.attn(h, rotations, mask), mlp], dim=-1))


class OutputNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 2 * dim)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        scale, shift = self.linear(F.silu(temb).to(x.dtype))[:, None].chunk(2, dim=-1)
        return modulate(self.norm(x), shift, scale)


def _stretched(full: int, size: int) -> Tensor:
    """Positions 0..full-1 resampled to `size` entries: a low-resolution clip spans the full frame's positions."""
    positions = torch.arange(full, dtype=torch.float32)
    if size == full:
        return positions
    return F.interpolate(positions[None, None], size, mode="linear")[0, 0]


class PyramidFluxTransformer(nn.Module):
    """The miniflux transformer; build it with `from_config` (the published config.json) or `from_pretrained`."""

    def __init__(
        self,
        patch_size: int = 1,
        in_channels: int = 64,
        num_layers: int = 8,
        num_single_layers: int = 16,
        attention_head_dim: int = 64,
        num_attention_heads: int = 30,
        joint_attention_dim: int = 4096,
        pooled_projection_dim: int = 768,
        axes_dims_rope: tuple[int, ...] = (16, 24, 24),
        use_temporal_causal: bool = True,
        interp_condition_pos: bool = True,  # config.json only: the reference always interpolates
    ) -> None:
        super().__init__()
        if sum(axes_dims_rope) != attention_head_dim:
            raise ValueError(f"axes_dims_rope {list(axes_dims_rope)} must add up to attention_head_dim")
        dim = num_attention_heads * attention_head_dim
        self.config = {
            "patch_size": patch_size,
            "in_channels": in_channels,
            "num_layers": num_layers,
            "num_single_layers": num_single_layers,
            "attention_head_dim": attention_head_dim,
            "num_attention_heads": num_attention_heads,
            "joint_attention_dim": joint_attention_dim,
            "pooled_projection_dim": pooled_projection_dim,
            "axes_dims_rope": list(axes_dims_rope),
            "use_temporal_causal": use_temporal_causal,
            "interp_condition_pos": interp_condition_pos,
        }
        self.latent_channels = in_channels // (PATCH * PATCH)
        self.time_text_embed = TimeTextEmbedding(dim, pooled_projection_dim)
        self.context_embedder = nn.Linear(joint_attention_dim, dim)
        self.x_embedder = nn.Linear(in_channels, dim)
        self.transformer_blocks = nn.ModuleList(
            DoubleStreamBlock(dim, num_attention_heads, attention_head_dim) for _ in range(num_layers)
        )
        self.single_transformer_blocks = nn.ModuleList(
            SingleStreamBlock(dim, num_attention_heads, attention_head_dim) for _ in range(num_single_layers)
        )
        self.norm_out = OutputNorm(dim)
        self.proj_out = nn.Linear(dim, patch_size * patch_size * in_channels)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PyramidFluxTransformer:
        """Build from a published config.json (diffusers bookkeeping and training options dropped)."""
        return cls(**{k: v for k, v in config.items() if not k.startswith("_") and k not in TRAINING_OPTIONS})

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, dtype: torch.dtype = torch.float32, variant: str | None = None
    ) -> PyramidFluxTransformer:
        """Load the official layout (config.json and safetensors weights) with strict key matching."""
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        with torch.device("meta"):
            model = cls.from_config(config)
        model.load_state_dict(load_state_dict(folder, variant), strict=True, assign=True)
        return model.to(dtype).eval().requires_grad_(False)

    @property
    def dtype(self) -> torch.dtype:
        return self.x_embedder.weight.dtype

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the official layout (used to make test checkpoints)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"_class_name": "PyramidFluxTransformer", **self.config}
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        save_file(
            {k: v.contiguous() for k, v in self.state_dict().items()}, folder / "diffusion_pytorch_model.safetensors"
        )

    def _tokens(self, clips: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Patch tokens [B, N, 4C] of every clip in order, and their positions [B, N, 3].

        Time counts latent frames across the clips; rows and columns are in the last clip's grid,
        so a clip at half resolution takes every other position (interpolated)."""
        rows, cols = clips[-1].shape[-2] // PATCH, clips[-1].shape[-1] // PATCH
        tokens, positions, start = [], [], 0
        for clip in clips:
            b, c, t, height, width = clip.shape
            h, w = height // PATCH, width // PATCH
            patches = clip.reshape(b, c, t, h, PATCH, w, PATCH).permute(0, 2, 3, 5, 4, 6, 1)
            tokens.append(patches.reshape(b, t * h * w, PATCH * PATCH * c))
            grid = torch.broadcast_tensors(
                torch.arange(start, start + t, dtype=torch.float32)[:, None, None],
                _stretched(rows, h)[None, :, None],
                _stretched(cols, w)[None, None, :],
            )
            positions.append(torch.stack(grid, dim=-1).reshape(t * h * w, 3))
            start += t
        batch = clips[-1].shape[0]
        return torch.cat(tokens, dim=1), torch.cat(positions).expand(batch, -1, -1).to(clips[-1].device)

    def _mask(self, text_mask: Tensor, times: Tensor) -> Tensor:
        """[B, 1, S, S]: padding text tokens only see each other; with temporal causality nothing sees the future."""
        video = torch.ones(times.shape[0], times.shape[1] - text_mask.shape[1], dtype=torch.bool, device=times.device)
        valid = torch.cat([text_mask.bool(), video], dim=1)
        mask = valid[:, None, :, None] == valid[:, None, None, :]
        if self.config["use_temporal_causal"]:
            mask = mask & (times[:, None, :, None] >= times[:, None, None, :])
        return mask

    def forward(
        self,
        clips: list[Tensor],
        encoder_hidden_states: Tensor,
        encoder_attention_mask: Tensor,
        pooled_projections: Tensor,
        timestep: Tensor,
    ) -> Tensor:
        """The velocity [B, C, t, H, W] of the last clip, given the earlier clips as clean history.

        clips: latents [B, C, t, H, W], oldest first; text: T5 states [B, L, joint_attention_dim]
        with their mask [B, L] and the pooled CLIP embedding [B, pooled_projection_dim];
        timestep: [B] in the scheduler's 0..1000 scale."""
        temb = self.time_text_embed(timestep, pooled_projections)
        context = self.context_embedder(encoder_hidden_states)
        tokens, video_positions = self._tokens(clips)
        x = self.x_embedder(tokens)
        text_positions = torch.zeros(*context.shape[:2], 3, device=x.device)
        positions = torch.cat([text_positions, video_positions], dim=1)
        rotations = rope_rotations(positions, self.config["axes_dims_rope"])
        mask = self._mask(encoder_attention_mask, positions[..., 0])

        for block in self.transformer_blocks:
            x, context = block(x, context, temb, rotations, mask)
        x = torch.cat([context, x], dim=1)
        for block in self.single_transformer_blocks:
            x = block(x, temb, rotations, mask)
        x = self.proj_out(self.norm_out(x[:, context.shape[1] :], temb))

        last = clips[-1]
        b, _, t, height, width = last.shape
        h, w = height // PATCH, width // PATCH
        x = x[:, -t * h * w :].reshape(b, t, h, w, PATCH, PATCH, self.latent_channels)
        return x.permute(0, 6, 1, 2, 4, 3, 5).reshape(b, self.latent_channels, t, height, width)
