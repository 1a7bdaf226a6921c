"""The compare view on the Generate tab: one prompt and seed sent to several backends at once.

The form's "Compare on" choice sends a group (`Groups.submit`); the view shows the visitor's
latest comparison, each backend's progress in its own column, and once they are done the
videos side by side with one play, pause and scrub (the same block as the /c/ share page,
driven by static/compare.js; static/compare-view.js follows the columns still rendering).
`/?c=<group id>` opens a comparison here.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

import gradio as gr

from dailies.app import assets, side_by_side
from dailies.app.errors import ApiError
from dailies.app.service import Service
from dailies.app.visitors import Visitor


@dataclass(frozen=True)
class CompareView:
    group_id: gr.BrowserState  # the visitor's latest comparison, kept across reloads
    drawn: gr.State  # what the view shows, so it is redrawn (and the players restarted) only on a change
    view: gr.HTML

    @property
    def outputs(self) -> list[gr.components.Component]:
        return [self.view, self.drawn]


def choices(service: Service) -> list[tuple[str, str]]:
    """Backends a comparison may use: those that can run now."""
    return [(b["display_name"], b["name"]) for b in service.describe_backends() if b["available"]]


def group_body(body: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The form's job body as a comparison: `backends` instead of `backend`, and no `model`
    (a checkpoint name belongs to one backend); each backend takes the rest as it can."""
    return {**{k: v for k, v in body.items() if k not in ("backend", "model")}, "backends": list(names)}


def submit(service: Service, visitor: Visitor, body: dict[str, Any]) -> tuple[str, str]:
    """Queue the comparison: (error line, group id or "" when refused)."""
    try:
        answer = service.groups.submit(body, visitor)
    except ApiError as exc:
        field = f" ({exc.field})" if exc.field else ""
        return f"**Not queued{field}:** {html.escape(exc.message)}", ""
    return "", answer["group"]


def draw(
    service: Service, compare: CompareView, group_id: str | None, drawn: str
) -> dict[gr.components.Component, Any]:
    """The view for a comparison (hidden when there is none)."""
    hidden = {compare.view: gr.update(value="", visible=False), compare.drawn: ""}
    if not group_id:
        return hidden
    try:
        group = service.groups.status(group_id)
    except ApiError:
        return hidden
    state = json.dumps([(j["id"], j["status"]) for j in group.jobs])
    if state == drawn:
        return {compare.drawn: drawn}  # the view left alone: its players keep playing
    heading = (
        f'<div class="dailies-compare-head"><strong>Side by side</strong> '
        f'<span class="dailies-compare-prompt">{html.escape(group.prompt)}</span> '
        f'<a href="/c/{group.id}" target="_blank" rel="noopener">share link</a></div>'
    )
    return {compare.view: gr.update(value=heading + side_by_side.block(group), visible=True), compare.drawn: state}


def layout() -> CompareView:
    return CompareView(
        group_id=gr.BrowserState("", storage_key="dailies-compare"),
        drawn=gr.State(""),
        view=gr.HTML(
            "",
            elem_id="compare-view",
            visible=False,
            head=assets.page_head(),
            js_on_load="dailies.compareView(element, trigger)",  # it also brings a linked comparison into view
        ),
    )


def wire(service: Service, demo: gr.Blocks, compare: CompareView) -> None:
    def on_load(group_id: str, request: gr.Request) -> dict[gr.components.Component, Any]:
        shared = request.query_params.get("c", "") if request else ""
        chosen = shared or group_id
        return {compare.group_id: chosen, **draw(service, compare, chosen, "")}

    demo.load(on_load, compare.group_id, [compare.group_id, *compare.outputs], api_visibility="private", queue=False)
    compare.view.click(
        lambda group_id, drawn: draw(service, compare, group_id, drawn),
        [compare.group_id, compare.drawn],
        compare.outputs,
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    )
