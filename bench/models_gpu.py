"""Seconds per video and peak VRAM of each open family at its published settings, on one CUDA GPU.

    python -m bench.models_gpu [--backends cogvideox,ltx-video,mochi,wan] [--all-models] [--repeat 1]

Runs each backend's default checkpoint (or every checkpoint) at its declared defaults (size, frames,
fps, steps, guidance) through the same backend code the worker runs, and records
bench/results/models_gpu_<card>.json with the card's name. Weights come from DAILIES_MODEL_<BACKEND>
or the Hub. The first run of a checkpoint pays its load (recorded apart); the timed runs follow.
Refuses to run without CUDA.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from importlib.metadata import version

import backends
from backends.base import Checkpoint
from backends.local_model import LocalModelBackend, gpu_visible
from bench.common import record
from dailies.contract.settings import Settings
from dailies.contract.spec import JobSpec

PROMPT = "A fishing boat leaves a small harbour at dawn, gulls circling, gentle waves, cinematic light"


def require_cuda() -> str:
    if not gpu_visible():
        raise SystemExit("bench.models_gpu needs a CUDA GPU and this machine has none (no /dev/nvidia0)")
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(f"torch {torch.__version__} here has no CUDA support: install a CUDA build of torch")
    return torch.cuda.get_device_name(0)


def run_one(backend: LocalModelBackend, checkpoint: Checkpoint, seed: int) -> dict:
    """One video at the checkpoint's published defaults."""
    import torch

    width, height = checkpoint.size.default
    request = JobSpec(
        id="bench",
        backend=backend.name,
        prompt=PROMPT,
        negative_prompt="",
        seed=seed,
        width=width,
        height=height,
        num_frames=checkpoint.frames.default,
        fps=checkpoint.fps,
        params={"model": checkpoint.name},
    )
    torch.cuda.reset_peak_memory_stats()
    started = time.monotonic()
    video = backend.generate(request, lambda fraction, message: None, lambda: False)
    return {
        "seconds": round(time.monotonic() - started, 2),
        **video.extra["timings"],
        "peak_vram_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        **{k: video.extra[k] for k in ("memory_mode", "steps", "guidance")},
        "width": video.width,
        "height": video.height,
        "num_frames": video.num_frames,
        "fps": video.fps,
        "model": video.model,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="cogvideox,ltx-video,mochi,wan")
    parser.add_argument("--all-models", action="store_true", help="every published checkpoint, not the default")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs after the first (loading) run")
    args = parser.parse_args()
    card = require_cuda()
    import torch

    settings = Settings.from_env({**os.environ, "DAILIES_DEVICE": "cuda"})
    results = []
    for name in args.backends.split(","):
        backend = backends.get(name.strip(), settings)
        checkpoints = backend.checkpoints if args.all_models else backend.checkpoints[:1]
        for checkpoint in checkpoints:
            first = run_one(backend, checkpoint, seed=0)
            timed = [run_one(backend, checkpoint, seed=i + 1) for i in range(args.repeat)]
            best = min(timed, key=lambda r: r["seconds"]) if timed else first
            results.append({"backend": name, "model": checkpoint.name, "first_run": first, **best})
            print(results[-1], flush=True)
    record(
        "models_gpu_" + re.sub(r"[^a-z0-9]+", "-", card.lower()).strip("-"),
        {
            "card": card,
            "vram_total_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
            "memory_mode_setting": settings.memory_mode,
            "versions": {p: version(p) for p in ("torch", "diffusers", "transformers")},
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
