"""diffusers' speed features, switched on a loaded pipeline's transformer (worker side, and bench.gpu).

- `compile`: regional compilation of the repeated transformer blocks (the picture is unchanged);
- `attention`: the fastest attention backend this card and install accept (unchanged);
- `step_cache`: First Block Cache, which reuses a step's output when the first block barely
  moved (faster, and the picture changes: off unless asked for);
- `fp8`: weights stored in fp8, computed in bf16 (less memory; the picture changes slightly).

Which are on for a checkpoint is the worker's DAILIES_SPEED settings (`Settings.speed_for`).

torch and diffusers are imported inside the functions: importing this module stays light.
"""

from __future__ import annotations

from typing import Any

from dailies.contract.settings import SPEED_FEATURES as FEATURES

# Fastest first; the first one this card and install accept is used.
ATTENTION_BACKENDS = ("_flash_3", "flash", "sage", "_native_cudnn", "_native_flash", "_native_efficient")
STEP_CACHE_THRESHOLD = 0.2


def fastest_attention(transformer: Any) -> str:
    for name in ATTENTION_BACKENDS:
        try:
            transformer.set_attention_backend(name)
            return name
        except (RuntimeError, ValueError, ImportError):
            continue
    transformer.set_attention_backend("native")
    return "native"


def switch_on(pipeline: Any, feature: str, device: str) -> str:
    """Turn one feature on for the pipeline's transformer; returns what exactly was switched on."""
    import torch
    from diffusers import FirstBlockCacheConfig

    transformer = pipeline.transformer
    if feature == "compile":
        # On the CPU the graph capture is exercised without paying for code generation.
        transformer.compile_repeated_blocks(fullgraph=True, **({} if device == "cuda" else {"backend": "eager"}))
        return "compile_repeated_blocks(fullgraph=True)"
    if feature == "attention":
        if device != "cuda":
            transformer.set_attention_backend("_native_math")
            return "_native_math"
        return fastest_attention(transformer)
    if feature == "step_cache":
        transformer.enable_cache(FirstBlockCacheConfig(threshold=STEP_CACHE_THRESHOLD))
        return f"FirstBlockCache(threshold={STEP_CACHE_THRESHOLD})"
    if feature == "fp8":
        transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16)
        return "layerwise casting, fp8 e4m3 storage, bf16 compute"
    raise ValueError(f"unknown speed feature {feature!r}; known: {', '.join(FEATURES)}")
