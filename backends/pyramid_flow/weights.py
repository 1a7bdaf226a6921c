"""Reading a weights folder of the official layout: config.json beside one safetensors file or its shards."""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor

WEIGHTS_NAME = "diffusion_pytorch_model"


def load_state_dict(folder: Path, variant: str | None = None) -> dict[str, Tensor]:
    """Every tensor of `folder`: `diffusion_pytorch_model[.variant].safetensors`, or the shards its index lists."""
    from safetensors.torch import load_file

    stem = WEIGHTS_NAME + (f".{variant}" if variant else "")
    index = folder / f"{stem}.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = [f"{stem}.safetensors"]
    missing = [name for name in files if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} has no {', '.join(missing)}")
    state: dict[str, Tensor] = {}
    for name in files:
        state.update(load_file(folder / name))
    return state
