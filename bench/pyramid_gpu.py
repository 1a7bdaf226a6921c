"""Pyramid Flow at its published configuration with random weights: seconds per stage and peak VRAM.

    python -m bench.pyramid_gpu [--model 768p] [--frames 121] [--offload]

Builds the miniflux transformer and causal video VAE from the shared manifest's configuration in
bf16 on one CUDA GPU (compute does not depend on weight values, so nothing is downloaded), runs one
text-to-video generation at the published settings (steps 20 per stage for the first latent frame,
10 for the others; guidance 9 and 5) and records bench/results/pyramid_gpu_<card>.json beside the
published figure (5 s at 768p: about 5.5 min on one A100). Needs torch only: the text encoders are
replaced by random embeddings of their output shapes (CLIP-L and T5-XXL run once per video and
cost little next to the transformer).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

from backends.pyramid_flow.pipeline import PyramidFlowPipeline
from backends.pyramid_flow.transformer import PyramidFluxTransformer
from backends.pyramid_flow.vae import CausalVideoVAE

MANIFEST = Path(__file__).resolve().parents[2] / "shared" / "data" / "pyramid-flow-miniflux-manifest.json"
SIZES = {"384p": (640, 384), "768p": (1280, 768)}
STEPS, VIDEO_STEPS = [20, 20, 20], [10, 10, 10]


def build(config: dict, cls: type, device: str) -> torch.nn.Module:
    with torch.device("meta"):
        module = cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    module = module.to_empty(device=device).to(torch.bfloat16)
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0, 0.02)
    return module.eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(SIZES), default="768p")
    parser.add_argument("--frames", type=int, default=121, help="8k+1; 121 = 16 latent frames, ~5 s at 24 fps")
    parser.add_argument("--offload", action="store_true", help="model offload: one module at a time on the GPU")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench.pyramid_gpu needs a CUDA GPU")
    card = torch.cuda.get_device_name(0)
    configs = json.loads(MANIFEST.read_text())["configs"]
    place = "cpu" if args.offload else "cuda"
    pipe = PyramidFlowPipeline(
        transformer=build(configs["diffusion_transformer"], PyramidFluxTransformer, place),
        vae=build(configs["causal_video_vae"], CausalVideoVAE, place),
        text_encoder=torch.nn.Identity(),
        tokenizer=None,
        text_encoder_2=torch.nn.Identity(),
        tokenizer_2=None,
    )
    pipe.vae.enable_tiling()
    if args.offload:
        pipe.enable_model_cpu_offload()
    g = torch.Generator("cuda").manual_seed(0)
    text = (
        torch.randn(2, 128, 4096, device="cuda", dtype=torch.bfloat16, generator=g),
        torch.ones(2, 128, dtype=torch.long, device="cuda"),
        torch.randn(2, 768, device="cuda", dtype=torch.bfloat16, generator=g),
    )
    pipe.encode_prompt = lambda prompts, device: text  # random embeddings in place of CLIP-L and T5-XXL

    width, height = SIZES[args.model]
    latent_frames = 1 + (args.frames - 1) // 8
    layout = [stage for stage, n in enumerate(STEPS) for _ in range(n)]
    layout += [stage for _ in range(latent_frames - 1) for stage, n in enumerate(VIDEO_STEPS) for _ in range(n)]
    per_stage = [0.0, 0.0, 0.0]
    last = [0.0]

    def on_step(_pipe, step: int, timestep, tensors: dict) -> dict:
        torch.cuda.synchronize()
        now = time.perf_counter()
        per_stage[layout[step]] += now - last[0]
        last[0] = now
        return tensors

    torch.cuda.reset_peak_memory_stats()
    started = last[0] = time.perf_counter()
    frames = pipe(
        prompt="a fishing boat leaves a harbour at dawn", height=height, width=width, num_frames=args.frames,
        num_inference_steps=STEPS, video_num_inference_steps=VIDEO_STEPS, guidance_scale=9.0,
        video_guidance_scale=5.0, generator=torch.Generator("cuda").manual_seed(1), callback_on_step_end=on_step,
    ).frames  # fmt: skip
    torch.cuda.synchronize()
    total = time.perf_counter() - started
    result = {
        "card": card,
        "model": args.model,
        "size": f"{width}x{height}",
        "frames": args.frames,
        "latent_frames": latent_frames,
        "memory": "model-offload" if args.offload else "gpu",
        "seconds_total": round(total, 1),
        "seconds_per_stage": [round(s, 1) for s in per_stage],
        "seconds_decode_and_rest": round(total - sum(per_stage), 1),
        "peak_vram_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "output_shape": list(frames.shape),
        "published": "5 s at 768p: about 5.5 min on one A100 (Pyramid Flow README)",
        "torch": torch.__version__,
    }
    print(json.dumps(result, indent=2))
    out = Path(args.out) / f"pyramid_gpu_{re.sub(r'[^A-Za-z0-9]+', '_', card).strip('_').lower()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
