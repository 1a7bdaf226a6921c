"""A tiny random-weight Pyramid Flow checkpoint in the official folder layout.

    text_encoder/ tokenizer/          CLIP-L's place: a 2-layer CLIPTextModel, a character-level BPE tokenizer
    text_encoder_2/ tokenizer_2/      T5's place: the tiny T5 of tiny_pipelines.py
    causal_video_vae/                 the causal video VAE, 8 latent channels
    diffusion_transformer_384p/       transformer, 2 double and 2 single blocks, 2 heads of 16
    diffusion_transformer_768p/       the same shape with other weights

Loaded through the same `from_pretrained` path as the published checkpoint, on the CPU, in about
a second; a 64x64 video of 9 frames (2 latent frames) takes well under a second per step.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.tiny_pipelines import _text_encoder_and_tokenizer

LATENT_CHANNELS = 8
TEXT_DIM = 32  # the tiny T5's d_model and the tiny CLIP's hidden size
TRANSFORMER = dict(
    patch_size=1,
    in_channels=4 * LATENT_CHANNELS,
    num_layers=2,
    num_single_layers=2,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=TEXT_DIM,
    pooled_projection_dim=TEXT_DIM,
    axes_dims_rope=[4, 6, 6],
    use_temporal_causal=True,
    interp_condition_pos=True,
)
VAE = dict(
    encoder_out_channels=LATENT_CHANNELS,
    decoder_in_channels=LATENT_CHANNELS,
    encoder_block_out_channels=[8, 8, 16, 16],
    decoder_block_out_channels=[8, 8, 16, 16],
    encoder_layers_per_block=[1, 1, 1, 1],
    decoder_layers_per_block=[1, 1, 1, 1],
    encoder_norm_num_groups=4,
    decoder_norm_num_groups=4,
    sample_size=32,  # the VAE's tile size once tiling is on: a 64x64 video is cut into tiles
)
FOLDERS = {"384p": "diffusion_transformer_384p", "768p": "diffusion_transformer_768p"}


def tiny_transformer(seed: int):
    import torch

    from backends.pyramid_flow.transformer import PyramidFluxTransformer

    torch.manual_seed(seed)
    return PyramidFluxTransformer(**TRANSFORMER).eval()


def tiny_vae(seed: int = 0):
    import torch

    from backends.pyramid_flow.vae import CausalVideoVAE

    torch.manual_seed(seed)
    return CausalVideoVAE(**VAE).eval()


def _clip(folder: Path, scratch: Path) -> None:
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    # Character-level BPE (no merges): every letter is a token, so any prompt tokenizes.
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in "abcdefghijklmnopqrstuvwxyz0123456789,.!?'-":
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    source = scratch
    source.mkdir(parents=True, exist_ok=True)
    (source / "vocab.json").write_text(json.dumps(vocab))
    (source / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(source / "vocab.json"), str(source / "merges.txt"), model_max_length=77)
    tokenizer.save_pretrained(folder / "tokenizer")
    torch.manual_seed(0)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=TEXT_DIM,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    CLIPTextModel(config).eval().save_pretrained(folder / "text_encoder")


def save_tiny_pyramid(folder: Path) -> Path:
    """Write the tiny checkpoint under `folder/pyramid-flow` (once) and return that folder."""
    target = folder / "pyramid-flow"
    if (target / FOLDERS["768p"] / "config.json").exists():
        return target
    _clip(target, folder / "clip-vocab")
    t5, t5_tokenizer = _text_encoder_and_tokenizer()
    t5.save_pretrained(target / "text_encoder_2")
    t5_tokenizer.save_pretrained(target / "tokenizer_2")
    tiny_vae().save_pretrained(target / "causal_video_vae")
    for seed, name in enumerate(FOLDERS.values()):
        tiny_transformer(seed).save_pretrained(target / name)
    return target
