"""Reading a weights folder of the official layout: config.json beside safetensors (one file or shards) or a .bin."""

from __future__ import annotations

import json
from pathlib import Path

from torch import Tensor

WEIGHTS_NAME = "diffusion_pytorch_model"


def load_state_dict(folder: Path, variant: str | None = None) -> dict[str, Tensor]:
    """Every tensor of `folder`: `diffusion_pytorch_model[.variant].safetensors`, the shards its index
    lists, or else the pickled `diffusion_pytorch_model[.variant].bin` (read with weights_only)."""
    import torch
    from safetensors.torch import load_file

    stem = WEIGHTS_NAME + (f".{variant}" if variant else "")
    index = folder / f"{stem}.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / f"{stem}.safetensors").exists() or not (folder / f"{stem}.bin").exists():
        files = [f"{stem}.safetensors"]
    else:
        return torch.load(folder / f"{stem}.bin", map_location="cpu", weights_only=True)
    missing = [name for name in files if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(f"{folder} has no {', '.join(missing)} (nor {stem}.bin)")
    state: dict[str, Tensor] = {}
    for name in files:
        state.update(load_file(folder / name))
    return state
