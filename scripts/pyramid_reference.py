"""Regenerate tests/data/pyramid_reference.npz: the public Pyramid Flow reference's outputs on our tiny checkpoint.

The default test run (tests/test_pyramid_stored_reference.py) compares our scheduler and pipeline
with these numbers, so the reference's behaviour is checked on every run without its code. They
come from github.com/jy0205/Pyramid-Flow at the commit pinned in tests/pyramid_reference.py
(COMMIT); nothing of its code is copied here. To regenerate (CPU, float32, about a minute):

    git clone https://github.com/jy0205/Pyramid-Flow /tmp/Pyramid-Flow
    git -C /tmp/Pyramid-Flow checkout 3040d717b0ef48f0dfb10d0eb9f3c1d0b55442e0
    .venv/bin/pip install einops                      # the reference's one extra import
    .venv/bin/python scripts/pyramid_reference.py /tmp/Pyramid-Flow

Stored (about 8 KB): the reference scheduler's timesteps and sigmas for each stage at 1, 3 and 10
steps; the latents of a text-to-video generation of 3 latent frames (17 frames, 64x64, seed 11,
steps [2, 1, 2] then [1, 2, 1] per stage) by the reference pipeline holding the tiny checkpoint's
weights (tests/tiny_pyramid.py, drawn from torch's seeded RNG: the torch version is stored with
them) and our block noise; and each decoded frame's mean colour. The tiny weights change with
torch's initialisation: when the test says the torch version differs, run this again.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pyramid_reference import (  # noqa: E402
    COMMIT,
    FIRST_STEPS,
    GENERATION,
    PROMPT,
    SCHEDULE_STEPS,
    SCHEDULER,
    SEED,
    STORED,
    TEMP,
    VIDEO_STEPS,
    frame_means,
    reference_modules,
    reference_pipeline,
)


def checked_commit(checkout: Path) -> None:
    """Refuse a checkout at another commit (a `git archive` export has no .git: then say so and go on)."""
    found = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    if found.returncode != 0:
        print(f"warning: {checkout} is not a git checkout; make sure it is {COMMIT}", file=sys.stderr)
    elif found.stdout.strip() != COMMIT:
        raise SystemExit(f"{checkout} is at {found.stdout.strip()}, not {COMMIT}: git checkout {COMMIT}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", type=Path, help="a local checkout of github.com/jy0205/Pyramid-Flow")
    parser.add_argument("--out", type=Path, default=STORED)
    args = parser.parse_args(argv)
    checked_commit(args.checkout)

    import torch

    from backends.pyramid_flow.pipeline import PyramidFlowPipeline
    from tests.tiny_pyramid import FOLDERS, save_tiny_pyramid

    stored: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as scratch, reference_modules(args.checkout) as reference:
        checkpoint = save_tiny_pyramid(Path(scratch))
        scheduler = reference.scheduler(**SCHEDULER)
        for stage in range(SCHEDULER["stages"]):
            for steps in SCHEDULE_STEPS:
                scheduler.set_timesteps(steps, stage)
                stored[f"timesteps_{stage}_{steps}"] = scheduler.timesteps.numpy().astype(np.float64)
                stored[f"sigmas_{stage}_{steps}"] = scheduler.sigmas.numpy().astype(np.float64)

        ours = PyramidFlowPipeline.from_pretrained(str(checkpoint / FOLDERS["384p"]))
        theirs = reference_pipeline(reference, ours, checkpoint)
        generator = torch.Generator().manual_seed(SEED)
        # Our block noise on the reference's side (its own draws from a MultivariateNormal torch refuses).
        theirs.sample_block_noise = lambda b, c, t, h, w: ours.block_noise(
            torch.Size([b, c, t, h, w]), generator, "cpu"
        )
        with torch.no_grad():
            latents = theirs.generate(
                prompt=PROMPT, temp=TEMP, num_inference_steps=FIRST_STEPS, video_num_inference_steps=VIDEO_STEPS,
                generator=generator, output_type="latent", **GENERATION,
            )  # fmt: skip
            frames = np.stack([np.asarray(f) for f in theirs.decode_latent(latents.clone(), save_memory=False)])
    stored["latents"] = latents.numpy().astype(np.float32)
    stored["frame_means"] = frame_means(frames.astype(np.float64))
    stored["torch"] = np.array(torch.__version__)
    stored["commit"] = np.array(COMMIT)
    np.savez_compressed(args.out, **stored)
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes): latents {tuple(latents.shape)}, {frames.shape[0]} frames"
    )


if __name__ == "__main__":
    main()
