"""The registry of backend families: name -> class. Instances are made once per process."""

from __future__ import annotations

from functools import cache

from backends.base import Backend
from backends.cogvideox import CogVideoXBackend
from backends.fal import FalBackend
from backends.hf_inference import HfInferenceBackend
from backends.hunyuanvideo import HunyuanVideoBackend
from backends.ltx2 import LTX2Backend
from backends.ltx_video import LTXVideoBackend
from backends.mochi import MochiBackend
from backends.openai_videos import OpenAIVideosBackend
from backends.preview import PreviewBackend
from backends.pyramid_flow import PyramidFlowBackend
from backends.replicate import ReplicateBackend
from backends.wan import WanBackend
from dailies.contract.settings import Settings

BACKEND_CLASSES: dict[str, type[Backend]] = {
    cls.name: cls
    for cls in (
        PreviewBackend,
        CogVideoXBackend,
        LTXVideoBackend,
        MochiBackend,
        WanBackend,
        PyramidFlowBackend,
        LTX2Backend,
        HunyuanVideoBackend,
        HfInferenceBackend,
        OpenAIVideosBackend,
        FalBackend,
        ReplicateBackend,
    )
}


@cache
def _instance(name: str, settings: Settings) -> Backend:
    return BACKEND_CLASSES[name](settings)


def get(name: str, settings: Settings) -> Backend:
    """The backend called `name` (KeyError if unknown), kept for the life of the process."""
    return _instance(name, settings)


def all_backends(settings: Settings) -> list[Backend]:
    return [get(name, settings) for name in BACKEND_CLASSES]


def usable_names(settings: Settings) -> list[str]:
    return [b.name for b in all_backends(settings) if b.availability().usable]
