"""Tiny random-weight diffusers pipelines for the open families, saved in diffusers layout.

They load through the backends' real `from_pretrained` path on the CPU in about a second. The
transformer and VAE shapes follow diffusers' own pipeline tests, sized for 64x64 videos and the
pipelines' default prompt lengths; the text encoder is a tiny T5 with a Unigram tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tests.published_rules import published

FAMILIES = ("cogvideox", "ltx-video", "mochi", "wan")
WORDS = ("a", "the", "cat", "dog", "on", "boat", "sea", "light", "red", "blue", "walks", "night", "city")


def smallest_frames(family: str, model: str | None = None) -> int:
    """The smallest frame count the checkpoint's published rules allow (tests/published_rules.py, not
    the backend's own declaration): what tiny jobs ask for."""
    return published(family, model).smallest_frames


def tiny_job(family: str, **body) -> dict:
    """A job body for a tiny checkpoint: 64x64, the smallest valid frame count, 2 steps."""
    frames = smallest_frames(family, body.get("model"))
    return {"backend": family, "width": 64, "height": 64, "num_frames": frames, "steps": 2, **body}


def _text_encoder_and_tokenizer():
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import T5Config, T5EncoderModel, T5TokenizerFast

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [
        (f"\u2581{w}", -1.0 - i / 10) for i, w in enumerate(WORDS)
    ]
    core = Tokenizer(models.Unigram(vocab, unk_id=2))
    core.pre_tokenizer = pre_tokenizers.Metaspace()
    core.decoder = decoders.Metaspace()
    tokenizer = T5TokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0
    )
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, dropout_rate=0.0)
    return T5EncoderModel(config).eval(), tokenizer


def _cogvideox(image_to_video: bool = False):
    import diffusers
    import torch
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXTransformer3DModel

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=8 if image_to_video else 4,  # image-to-video: the image latents ride along as channels
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        sample_width=8,
        sample_height=8,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    text_encoder, tokenizer = _text_encoder_and_tokenizer()
    pipeline = diffusers.CogVideoXImageToVideoPipeline if image_to_video else diffusers.CogVideoXPipeline
    return pipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=CogVideoXDDIMScheduler(),
    )


def _ltx():
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    text_encoder, tokenizer = _text_encoder_and_tokenizer()
    return LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )


def _mochi():
    import torch
    from diffusers import AutoencoderKLMochi, FlowMatchEulerDiscreteScheduler, MochiPipeline, MochiTransformer3DModel

    torch.manual_seed(0)
    transformer = MochiTransformer3DModel(
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=2,
        pooled_projection_dim=16,
        in_channels=12,
        out_channels=None,
        qk_norm="rms_norm",
        text_embed_dim=32,
        time_embed_dim=4,
        activation_fn="swiglu",
        max_sequence_length=256,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLMochi(
        latent_channels=12,
        out_channels=3,
        encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32),
        layers_per_block=(1, 1, 1, 1, 1),
    )
    text_encoder, tokenizer = _text_encoder_and_tokenizer()
    return MochiPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )


def _wan(image_to_video: bool = False):
    import diffusers
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    text_encoder, tokenizer = _text_encoder_and_tokenizer()
    parts = dict(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )
    if image_to_video:
        # Wan 2.2 TI2V style: the image's latents replace the first latent frame (no CLIP image encoder).
        return diffusers.WanImageToVideoPipeline(
            **parts, image_processor=None, image_encoder=None, expand_timesteps=True
        )
    return diffusers.WanPipeline(**parts)


def _gemma_text_encoder_and_tokenizer():
    """A tiny Gemma 3 (LTX-2's text encoder family) and a letter-per-token Gemma tokenizer."""
    import string

    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, GemmaTokenizer

    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "\u2581", *string.ascii_lowercase]
    tokenizer = GemmaTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[])
    torch.manual_seed(0)
    config = Gemma3Config(
        text_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            vocab_size=len(tokens),
            sliding_window=16,
            max_position_embeddings=256,
        ),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        ),
        mm_tokens_per_image=4,
    )
    return Gemma3ForConditionalGeneration(config).eval(), tokenizer


def _ltx2():
    """LTX-2 with its audio half: the real VAE layout (sides /32, frames 8k+1) at a few channels."""
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    text_encoder, tokenizer = _gemma_text_encoder_and_tokenizer()
    width = text_encoder.config.text_config.hidden_size
    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=width,
        rope_double_precision=False,
        rope_type="split",
    )
    torch.manual_seed(0)
    connectors = LTX2TextConnectors(
        caption_channels=width,
        text_proj_in_factor=text_encoder.config.text_config.num_hidden_layers + 1,  # every hidden state
        video_connector_num_attention_heads=2,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=2,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(
        latent_channels=4,
        block_out_channels=(8, 16, 32, 64),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )
    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        mel_bins=8,
    )
    torch.manual_seed(0)
    # Upsampling 160x (the mel hop) so the sound lasts as long as the picture, like the real vocoder.
    vocoder = LTX2Vocoder(
        in_channels=16,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[20, 8, 8],
        upsample_factors=[10, 4, 4],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        output_sampling_rate=16000,
    )
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )


def _with_latent_upsampler(pipe):
    """LTX-2 with the x2 latent upsampler in its `latent_upsampler` folder, as the distilled weights ship."""
    import torch
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    torch.manual_seed(0)
    upsampler = LTX2LatentUpsamplerModel(in_channels=4, mid_channels=32, num_blocks_per_stage=1)

    def save_pretrained(target: Path) -> None:
        pipe.save_pretrained(target)
        upsampler.save_pretrained(target / "latent_upsampler")

    return SimpleNamespace(save_pretrained=save_pretrained)


def _qwen_text_encoder_and_tokenizer():
    """A tiny Qwen2.5-VL text tower (HunyuanVideo 1.5's) and a byte-per-token Qwen2 tokenizer with a chat template."""
    import torch
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, Qwen2Tokenizer

    tokens = [*sorted(ByteLevel.alphabet()), "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = Qwen2Tokenizer(
        vocab={t: i for i, t in enumerate(tokens)},
        merges=[],
        unk_token=None,
        bos_token=None,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    torch.manual_seed(0)
    config = Qwen2_5_VLTextConfig(
        hidden_size=16,
        intermediate_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=len(tokens),
        bos_token_id=None,
        pad_token_id=len(tokens) - 3,
        eos_token_id=len(tokens) - 1,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
    )
    return Qwen2_5_VLTextModel(config).eval(), tokenizer


def _hunyuanvideo(image_to_video: bool = False):
    """HunyuanVideo 1.5: the real VAE strides (sides /16, frames 4k+1) at a few channels; ByT5 for quoted text."""
    import diffusers
    import torch
    from diffusers import AutoencoderKLHunyuanVideo15, FlowMatchEulerDiscreteScheduler, HunyuanVideo15Transformer3DModel
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import ByT5Tokenizer, SiglipVisionConfig, SiglipVisionModel, T5Config, T5EncoderModel

    text_encoder, tokenizer = _qwen_text_encoder_and_tokenizer()
    torch.manual_seed(0)
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=9,  # noise, the first frame's latents and its mask
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=1,
        num_refiner_layers=1,
        mlp_ratio=2.0,
        text_embed_dim=16,
        text_embed_2_dim=32,
        image_embed_dim=12,
        rope_axes_dim=(2, 2, 4),
        target_size=64,
        task_type="i2v" if image_to_video else "t2v",
    )
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo15(
        latent_channels=4,
        block_out_channels=(8, 8, 8, 8, 8),
        layers_per_block=1,
        spatial_compression_ratio=16,
        temporal_compression_ratio=4,
        downsample_match_channel=False,
        upsample_match_channel=False,
    )
    torch.manual_seed(0)
    byt5 = T5EncoderModel(
        T5Config(vocab_size=384, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, dropout_rate=0.0)
    )
    parts = dict(
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder_2=byt5.eval(),
        tokenizer_2=ByT5Tokenizer(),
        guider=ClassifierFreeGuidance(guidance_scale=6.0),
    )
    if not image_to_video:
        return diffusers.HunyuanVideo15Pipeline(**parts)
    from transformers import SiglipImageProcessor

    torch.manual_seed(0)
    image_encoder = SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=12,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
    )
    return diffusers.HunyuanVideo15ImageToVideoPipeline(
        **parts,
        image_encoder=image_encoder.eval(),
        feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}),
    )


BUILDERS = {
    "cogvideox": _cogvideox,
    "cogvideox-i2v": lambda: _cogvideox(image_to_video=True),
    "ltx-video": _ltx,
    "mochi": _mochi,
    "wan": _wan,
    "wan-i2v": lambda: _wan(image_to_video=True),
    "ltx-2": lambda: _with_latent_upsampler(_ltx2()),
    "hunyuanvideo": _hunyuanvideo,
    "hunyuanvideo-i2v": lambda: _hunyuanvideo(image_to_video=True),
}


def save_tiny(family: str, folder: Path) -> Path:
    """Build the family's tiny pipeline and save it (diffusers layout) under `folder/family`."""
    target = folder / family
    if not (target / "model_index.json").exists():
        BUILDERS[family]().save_pretrained(target)
    return target


class OwnPipeline:
    """A pipeline of our own, not a diffusers class, with the surface the model runtime calls.

    Like Pyramid Flow it calls back once per stage and step (two stages), so its family reports a
    progress total of its own. The frames are seeded noise passed through one saved linear layer.
    """

    stages = 2

    def __init__(self, layer) -> None:
        self.layer = layer

    @classmethod
    def save(cls, folder: Path) -> Path:
        import torch

        torch.manual_seed(0)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(torch.nn.Linear(3, 3).state_dict(), folder / "layer.pt")
        return folder

    @classmethod
    def from_pretrained(cls, source: str, dtype=None, variant: str | None = None) -> OwnPipeline:
        import torch

        layer = torch.nn.Linear(3, 3)
        layer.load_state_dict(torch.load(Path(source) / "layer.pt"))
        return cls(layer.to(dtype))

    @property
    def components(self) -> dict:
        return {"layer": self.layer}

    def to(self, device: str) -> OwnPipeline:
        self.layer.to(device)
        return self

    def enable_model_cpu_offload(self) -> None:
        """Nothing to offload: one layer."""

    def enable_sequential_cpu_offload(self) -> None:
        """Nothing to offload: one layer."""

    def set_progress_bar_config(self, **config) -> None:
        """No progress bar to configure."""

    def __call__(self, *, height, width, num_frames, num_inference_steps, generator, callback_on_step_end, **kwargs):
        import torch

        frames = torch.rand((1, num_frames, height, width, 3), generator=generator)
        for step in range(self.stages * num_inference_steps):
            frames = self.layer(frames).sigmoid()
            callback_on_step_end(self, step, None, {})
        return SimpleNamespace(frames=frames.numpy())
