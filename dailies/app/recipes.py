"""A generation's recipe as a visitor reads it: the share page's list and the page's detail view."""

from __future__ import annotations

from typing import Any

from dailies.app.names import display_name


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) else "—"


def timing(g: dict[str, Any]) -> str:
    """Time rendered and time waited, apart (the visitor waited for both)."""
    t = g.get("timings") or {}
    rendered = t.get("run_s", t.get("generate_s"))
    return f"rendered in {_seconds(rendered)}, waited {_seconds(t.get('queued_s'))} in the queue"


def _shown(value: object) -> str:
    """A recipe value as a visitor reads it: yes or no rather than True or False, and "default"
    for a parameter left empty (the checkpoint's own steps or guidance) rather than None."""
    if value is None:
        return "default"
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def recipe_rows(g: dict[str, Any]) -> list[tuple[str, str]]:
    """The recipe as (label, value) rows."""
    rows: list[tuple[str, object]] = [
        ("Backend", display_name(g["backend"])),
        ("Model", g["model"]),
        ("Seed", "random (not honoured)" if g.get("seed") is None else str(g["seed"])),
        ("Size", f"{g['width']}×{g['height']}"),
        ("Length", f"{g['duration_s']:g} s, {g['num_frames']} frames at {g['fps']} fps"),
    ]
    if g.get("negative_prompt"):
        rows.append(("Negative prompt", g["negative_prompt"]))
    rows += [(k.replace("_", " ").capitalize(), v) for k, v in sorted((g.get("params") or {}).items())]
    rows.append(("Time", timing(g)))
    rows.append(("Made", g["created_at"][:16].replace("T", " ") + " UTC"))
    return [(label, _shown(value)) for label, value in rows]
