"""One comparison's videos side by side with one play, pause and scrub (static/compare.js), or
each job's progress while it runs: the /c/ share page and the page's compare view show the same
block (templates/side_by_side.html)."""

from __future__ import annotations

from typing import Any

from dailies.app import assets
from dailies.app.groups import GroupStatus
from dailies.app.names import display_name, short_name
from dailies.app.recipes import timing


def _column(job: dict[str, Any]) -> dict[str, Any]:
    g = job.get("generation")
    backend = job.get("backend") or (g or {}).get("backend", "")
    column = {"generation": g, "name": display_name(backend), "short": short_name(backend)}
    if g:
        return {**column, "timing": timing(g)}
    state = job["status"]
    if state == "running":
        detail = f"rendering, {job.get('progress', 0) * 100:.0f}%"
    elif state == "queued":
        ahead = job.get("position") or 0
        detail = f"waiting, {ahead} ahead" if ahead else "waiting, next to run"
    else:
        detail = f"{state}: {job.get('error') or ''}".rstrip(": ")
    return {**column, "id": job["id"], "status": state, "detail": detail}


def values(group: GroupStatus) -> dict[str, Any]:
    """What templates/side_by_side.html shows of a group (GET /api/v1/groups/{id})."""
    return {
        "group": group,
        "columns": [_column(j) for j in group.jobs],
        "controls": sum(1 for j in group.jobs if j.get("generation")) > 1,
        "per_row": 2 if len(group.jobs) == 4 else len(group.jobs),  # balanced rows: 2, 3, or 2×2
    }


def block(group: GroupStatus) -> str:
    return assets.render("side_by_side.html", **values(group))
