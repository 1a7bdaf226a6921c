"""The open models on a GPU at their published configuration, and what diffusers' speed features buy.

For each checkpoint (`model-configs.json` in the team's shared data folder), the transformer and
VAE are built at full size from their published configuration with random weights (compute
does not depend on weight values), in bf16, inside the family's diffusers pipeline at the
checkpoint's default size and length. The text encoder is left out: it runs once per job, so
prompt embeddings of the published shape are passed in. Measured per checkpoint:

- seconds per denoising step (between step callbacks, after a warm-up run), VAE decode seconds
  (end of the last step to the end of the call), seconds per video (published steps x step +
  decode) and peak VRAM;
- the same with each speed feature on alone, then all together, as ratios against plain bf16
  in the same run: regional compilation (`compile_repeated_blocks`), the fastest attention
  backend this card and install support, a step cache (First Block Cache: it changes the
  picture), fp8 weight storage (`enable_layerwise_casting`), switched on by the same code the
  worker uses (`dailies/worker/speed.py`).

A feature that fails on a model is recorded with its error; the run goes on.

    python -m bench.gpu [--models LTX-Video-0.9.1,CogVideoX-2b,Wan2.1-T2V-1.3B] [--steps 4]
    python -m bench.gpu --tiny      # the same code on the CPU with tiny models (what the tests run)
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.common import record
from dailies.worker.speed import FEATURES, switch_on

ROOT = Path(__file__).resolve().parents[1]
# The team's shared folder sits beside the checkout (or inside it, on a device machine).
CONFIGS = (
    next(
        (p for p in (ROOT / "shared", ROOT.parent / "shared", ROOT.parents[1] / "shared") if p.is_dir()),
        ROOT / "shared",
    )
    / "data"
    / "model-configs.json"
)
DEFAULT_MODELS = "LTX-Video-0.9.1,CogVideoX-2b,Wan2.1-T2V-1.3B"
# Pipelines this script can drive with prompt embeddings alone (LTX-2 and HunyuanVideo 1.5 need
# several encoders' outputs and are not measured here).
FAMILIES = {
    "CogVideoXPipeline": "cogvideox",
    "LTXPipeline": "ltx-video",
    "MochiPipeline": "mochi",
    "WanPipeline": "wan",
}


@dataclass
class Model:
    """What one measured run needs: how to build the pipeline, and how to call it."""

    name: str
    family: str
    build: Callable[[], Any]
    call: dict[str, Any]
    text: tuple[int, int]  # prompt embedding length and width
    published_steps: int


def published(name: str, entry: dict, device: str) -> Model:
    """A checkpoint at its published configuration: random full-size transformer and VAE, bf16."""
    family = FAMILIES[entry["pipeline"].split()[0].replace("LTXConditionPipeline", "LTXPipeline")]
    defaults = entry["defaults"].get("stage1", entry["defaults"])  # LTX 13B distilled: its first stage

    def build() -> Any:
        import diffusers
        import torch

        torch.manual_seed(0)
        with torch.device(device):
            transformer = getattr(diffusers, entry["transformer"]["class"])(**_config(entry["transformer"]))
            vae = getattr(diffusers, entry["vae"]["class"])(**_config(entry["vae"]))
        scheduler = getattr(diffusers, entry["scheduler"]["class"])(**_config(entry["scheduler"]))
        pipeline = getattr(diffusers, family_pipeline(family))(
            tokenizer=None, text_encoder=None, transformer=transformer, vae=vae, scheduler=scheduler
        )
        return pipeline

    call = {k: defaults[k] for k in ("height", "width", "num_frames", "guidance_scale") if k in defaults}
    if "timesteps" in defaults:
        call["timesteps"] = defaults["timesteps"]
    text_config = entry["text_encoder"]["config"]
    text = (entry["text_encoder"]["max_sequence_length"], text_config.get("d_model") or text_config["hidden_size"])
    return Model(name, family, build, call, text, defaults["num_inference_steps"])


def tiny(family: str) -> Model:
    """The tests' tiny pipeline of a family at 64x64: the script's code on the CPU in seconds."""
    from tests.tiny_pipelines import BUILDERS, smallest_frames

    lengths = {"cogvideox": 226, "ltx-video": 128, "mochi": 256, "wan": 512}
    call = {"height": 64, "width": 64, "num_frames": smallest_frames(family), "guidance_scale": 5.0}
    return Model(f"tiny-{family}", family, BUILDERS[family], call, (lengths[family], 32), 50)


def family_pipeline(family: str) -> str:
    return {v: k for k, v in FAMILIES.items()}[family]


def _config(part: dict) -> dict:
    return {k: v for k, v in part["config"].items() if not k.startswith("note")}


def to_bf16(module: Any) -> None:
    """bf16, but the parts the model class keeps in fp32 stay so (as `from_pretrained(torch_dtype=...)` does)."""
    import torch

    keep = getattr(module, "_keep_in_fp32_modules", None) or []
    for name, part in module.named_parameters():
        fp32 = any(k in name.split(".") for k in keep)
        part.data = part.data.to(torch.float32 if fp32 else torch.bfloat16)


def run(model: Model, pipeline: Any, steps: int, device: str) -> dict[str, float]:
    """One timed generation after a short warm-up (which also pays any compilation)."""
    import torch

    length, width = model.text
    embeds = torch.randn(1, length, width, device=device, dtype=torch.bfloat16)
    kwargs: dict[str, Any] = {**model.call, "prompt_embeds": embeds, "negative_prompt_embeds": embeds.clone()}
    if model.family in ("ltx-video", "mochi"):
        mask = torch.ones(1, length, device=device, dtype=torch.long)
        kwargs |= {"prompt_attention_mask": mask, "negative_prompt_attention_mask": mask}
    if "timesteps" in kwargs:
        kwargs["timesteps"] = kwargs["timesteps"][:steps]
    marks: list[float] = []

    def on_step(_pipe: Any, _step: int, _timestep: Any, outputs: dict) -> dict:
        if device == "cuda":
            torch.cuda.synchronize()
        marks.append(time.perf_counter())
        return outputs

    def generate(n: int, output_type: str) -> float:
        marks.clear()
        generator = torch.Generator(device="cpu").manual_seed(0)
        pipeline(
            **kwargs, num_inference_steps=n, generator=generator, output_type=output_type, callback_on_step_end=on_step
        )
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    generate(2, "latent")  # warm-up: kernels chosen, graphs compiled, caches primed
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    ended = generate(steps, "pt")
    step_s = (marks[-1] - marks[0]) / (len(marks) - 1)
    decode_s = ended - marks[-1]
    return {
        "step_s": round(step_s, 4),
        "decode_s": round(decode_s, 4),
        "video_s": round(model.published_steps * step_s + decode_s, 2),
        "peak_vram_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else 0.0,
    }


def measure(model: Model, steps: int, device: str, features: tuple[str, ...]) -> dict[str, Any]:
    """Plain bf16, then each feature alone, then all together; each on a freshly built pipeline."""
    import torch

    out: dict[str, Any] = {"model": model.name, "family": model.family, "published_steps": model.published_steps}
    out["call"] = {k: v for k, v in model.call.items() if k != "timesteps"}
    for label, chosen in [("bf16", ()), *((f, (f,)) for f in features), ("all", features)]:
        pipeline = model.build().to(device)
        # Wan's VAE stays in fp32, as its docs say; every other part runs in bf16.
        to_bf16(pipeline.transformer)
        if model.family == "wan":
            pipeline.vae.to(torch.float32)
        else:
            to_bf16(pipeline.vae)
        pipeline.set_progress_bar_config(disable=True)
        try:
            switched = [switch_on(pipeline, f, device) for f in chosen]
            result = run(model, pipeline, steps, device)
        except Exception as exc:  # a feature a model does not support is a finding, not the end
            out[label] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        else:
            out[label] = {**result, "switched_on": switched}
            if label != "bf16" and "step_s" in out["bf16"]:
                out[label]["step_ratio"] = round(result["step_s"] / out["bf16"]["step_s"], 3)
                out[label]["video_ratio"] = round(result["video_s"] / out["bf16"]["video_s"], 3)
        del pipeline
        if device == "cuda":
            torch.cuda.empty_cache()
        torch._dynamo.reset()
        print(json.dumps({"model": model.name, label: out[label]}), flush=True)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--models",
        help=f"checkpoints from model-configs.json (default {DEFAULT_MODELS}); with --tiny, families (default wan)",
    )
    parser.add_argument("--steps", type=int, default=4, help="timed denoising steps per run (at least 2)")
    parser.add_argument("--features", default=",".join(FEATURES))
    parser.add_argument("--configs", type=Path, default=CONFIGS)
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (the tests run this)")
    parser.add_argument("--record", default=None, help="results name (default: gpu_<card>, or gpu_tiny_cpu)")
    args = parser.parse_args(argv)
    import torch
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    features = tuple(f for f in args.features.split(",") if f)
    if args.tiny:
        device, card = "cpu", "cpu"
        models = [tiny(f) for f in (args.models or "wan").split(",")]
    else:
        if not torch.cuda.is_available():
            raise SystemExit("bench.gpu needs a CUDA GPU (or --tiny for the CPU smoke run)")
        device, card = "cuda", torch.cuda.get_device_name(0)
        configs = json.loads(args.configs.read_text())
        models = [published(name, configs[name], device) for name in (args.models or DEFAULT_MODELS).split(",")]
    results = [measure(m, max(2, args.steps), device, features) for m in models]
    name = args.record or ("gpu_tiny_cpu" if args.tiny else "gpu_" + re.sub(r"[^a-z0-9]+", "-", card.lower()))
    summary = {
        "command": "python -m bench.gpu " + " ".join(argv if argv is not None else []),
        "card": card,
        "measured": not args.tiny,
        "vram_total_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if device == "cuda" else 0,
        "versions": {p: version(p) for p in ("torch", "diffusers", "transformers")},
        "steps_timed": max(2, args.steps),
        "results": results,
    }
    record(name, summary)
    return summary


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
