"""What the page tells a visitor about the backends: what each one is, a speed or price hint
where one is known, and for the ones that cannot run now a reason written for them. The
operator's detail (which variable, which pip line) stays in the logs and `/api/v1/healthz`.

Works on `Service.describe_backends()` entries, so the page and the API never disagree.
"""

from __future__ import annotations

from html import escape
from typing import Any

from dailies.app.names import short_name

KIND = {"open": "open model", "hosted": "hosted, paid per video", "preview": "instant, on the CPU"}
# Published figures (REFERENCE.md, model cards); none measured here yet.
HINTS = {
    "preview": "a few seconds",
    "ltx-video": "fast: a short HD clip in about 10 s on an H100 (distilled)",
    "cogvideox": "about 90 s per clip on an H100 (5B), 45 s (2B)",
    "mochi": "slow: wants an H100",
    "wan": "1.3B runs in 8 GB; 14B is slower",
    "hf-inference": "billed by the provider",
    "openai-videos": "billed by the provider",
    "fal": "billed by the provider",
    "replicate": "billed by the provider",
}


def kind(info: dict[str, Any]) -> str:
    return KIND.get(info["kind"], info["kind"])


def visitor_reason(info: dict[str, Any]) -> str:
    """Why a backend cannot be picked now, in the visitor's terms."""
    reason = info.get("unavailable_reason") or ""
    if reason.startswith("misconfigured"):
        return "The provider turned down this Space's key; it is off until the owner fixes it."
    if info["kind"] == "hosted":
        return "Not set up on this Space (it needs the owner's account with the provider)."
    if info["kind"] == "open":
        return "Needs a GPU machine, and none is connected to this Space right now."
    return "No machine is running it right now; try again later."


def choices(described: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The dropdown: only backends that can run now, each labelled with what it is."""
    return [(f"{short_name(b['name'])} · {kind(b)}", b["name"]) for b in described if b["available"]]


def unavailable_html(described: list[dict[str, Any]]) -> str:
    """The others, greyed, each with its reason."""
    items = [
        f'<li data-backend="{escape(b["name"])}"><strong>{escape(b["display_name"])}</strong> '
        f"<span>({escape(kind(b))})</span>: {escape(visitor_reason(b))}</li>"
        for b in described
        if not b["available"]
    ]
    if not items:
        return ""
    return (
        '<details class="dailies-unavailable"><summary>Not running here now '
        f"({len(items)})</summary><ul>{''.join(items)}</ul></details>"
    )


def note(info: dict[str, Any], width: float | None = None, height: float | None = None) -> str:
    """The line under the backend choice (Markdown): what it is, its hint, and warnings about the form."""
    lines = [escape(info["description"])]
    hint = HINTS.get(info["name"])
    if hint:
        lines.append(f"*{escape(kind(info))}; {escape(hint)}.*")
    rec = info["size"]["recommended_min"]
    if rec and ((width and width < rec) or (height and height < rec)):
        lines.append(f"Sizes under {rec} px are below what the model card recommends; expect poor results.")
    if not info["seed"]:
        lines.append("This backend does not honour a seed.")
    return "\n\n".join(lines)
