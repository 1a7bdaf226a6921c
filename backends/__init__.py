"""The registry of backend families: name -> class. Instances are made once per process."""

from __future__ import annotations

from functools import cache

from backends.base import Backend
from backends.preview import PreviewBackend
from dailies.config import Settings

BACKEND_CLASSES: dict[str, type[Backend]] = {cls.name: cls for cls in (PreviewBackend,)}


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
