"""Backend names as visitors read them: on the share pages and in the page's menus, cards and captions."""

from __future__ import annotations

import backends


def display_name(backend: str) -> str:
    return backends.BACKEND_CLASSES[backend].display_name if backend in backends.BACKEND_CLASSES else backend


def short_name(backend: str) -> str:
    """The name without its aside ("Preview (pipeline preview, not a model)" -> "Preview"), for
    places a phone gives one line: menus, cards, captions."""
    return display_name(backend).split(" (")[0]
