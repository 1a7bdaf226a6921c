"""The detail view above the gallery grid: the player, the prompt, the recipe, a share link and
a way to report it to the owners (the same check and limit as the API's report route)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import gradio as gr

from dailies.app import assets
from dailies.app.errors import ApiError
from dailies.app.page import generate
from dailies.app.page.clicks import CardClick
from dailies.app.recipes import recipe_rows
from dailies.app.service import Service
from dailies.app.takedown import REASON_MAX
from dailies.app.visitors import of_page
from dailies.contract.spec import valid_id

RECIPE_KEYS = (
    "id",
    "backend",
    "model",
    "seed",
    "width",
    "height",
    "num_frames",
    "fps",
    "duration_s",
    "has_audio",
    "negative_prompt",
    "params",
    "timings",
    "created_at",
)


@dataclass(frozen=True)
class Detail:
    column: gr.Column
    video: gr.HTML
    prompt: gr.Textbox
    reuse: gr.Button
    elsewhere: gr.Button
    close: gr.Button
    share: gr.HTML
    recipe: gr.JSON
    reason: gr.Textbox
    report: gr.Button
    reported: gr.Markdown
    generation_id: gr.State

    @property
    def outputs(self) -> set[gr.components.Component]:
        """What `open_detail` may set."""
        return {
            self.column,
            self.video,
            self.prompt,
            self.recipe,
            self.generation_id,
            self.share,
            self.elsewhere,
            self.reason,
            self.reported,
        }


def recipe(generation: dict[str, Any]) -> dict[str, Any]:
    return {k: generation[k] for k in RECIPE_KEYS}


def player_html(g: dict[str, Any]) -> str:
    """The detail player: the browser streams the file itself (from the Hub for a public dataset).

    It starts muted (browsers only autoplay muted video); one with sound shows an unmute button.
    """
    player = (
        f'<video class="dailies-player" controls autoplay muted loop playsinline preload="metadata" '
        f'poster="{html.escape(g["poster_url"])}" src="{html.escape(g["video_url"])}" '
        f'width="{g["width"]}" height="{g["height"]}"></video>'
    )
    if g["has_audio"]:
        player += '<button type="button" class="dailies-unmute" aria-pressed="false">🔇 Unmute</button>'
    return player


def request_of(g: dict[str, Any]) -> dict[str, Any]:
    """The POST /api/v1/jobs body that makes this generation again (its seed included)."""
    body = {k: g[k] for k in ("prompt", "backend", "seed", "width", "height", "num_frames", "fps")}
    if g.get("negative_prompt"):
        body["negative_prompt"] = g["negative_prompt"]
    return {**body, **(g.get("params") or {})}


def share_html(g: dict[str, Any]) -> str:
    """The share page with a button that copies its absolute address, download, the comparison
    it was made in, and the recipe as a visitor reads it, to copy or download as the API
    request that makes it again."""
    request = json.dumps(request_of(g), indent=2)
    links = [
        f'<a class="dailies-share" href="/g/{g["id"]}" target="_blank" rel="noopener">Share page</a>',
        f'<button type="button" class="dailies-copy" data-copy-link="/g/{g["id"]}">Copy link</button>',
        f'<a href="{html.escape(g["video_url"])}" download="dailies-{g["id"]}.mp4">Download</a>',
        f'<button type="button" class="dailies-copy" data-copy-text="{html.escape(request)}">Copy recipe</button>',
        f'<a href="data:application/json;charset=utf-8,{quote(request)}" download="dailies-{g["id"]}.json">'
        "Recipe (JSON)</a>",
    ]
    if g.get("group"):
        links.append(f'<a class="dailies-group-link" href="/?c={g["group"]}">See it side by side</a>')
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in recipe_rows(g))
    return f'<p class="dailies-share-links">{" ".join(links)}</p><dl class="dailies-recipe">{rows}</dl>'


def open_detail(service: Service, detail: Detail, generation_id: str) -> dict[gr.components.Component, Any]:
    """The detail view of one generation; hidden when there is no such generation. "Try on
    another backend" shows only when another one can run now."""
    try:
        g = service.generation(generation_id)
    except ApiError:
        return {
            detail.column: gr.update(visible=False),
            detail.video: "",
            detail.prompt: "",
            detail.recipe: {},
            detail.generation_id: "",
            detail.share: "",
            detail.reason: "",
            detail.reported: "",
        }
    another = generate.other_backend(service, g["backend"]) is not None
    return {
        detail.column: gr.update(visible=True),
        detail.video: player_html(g),
        detail.prompt: g["prompt"],
        detail.recipe: recipe(g),
        detail.generation_id: g["id"],
        detail.share: share_html(g),
        detail.elsewhere: gr.update(visible=another),
        detail.reason: "",
        detail.reported: "",
    }


def layout() -> Detail:
    with gr.Column(visible=False, elem_id="detail") as column:
        video = gr.HTML("", elem_id="detail-video", head=assets.page_head(), js_on_load="dailies.player(element)")
        prompt = gr.Textbox(label="Prompt", interactive=False, elem_id="detail-prompt")
        with gr.Row():
            reuse = gr.Button("Use these settings", elem_id="reuse", variant="primary", size="sm")
            elsewhere = gr.Button("Try on another backend", elem_id="elsewhere", size="sm")
            close = gr.Button("Close", elem_id="detail-close", size="sm")
        share = gr.HTML("", elem_id="detail-share", head=assets.page_head(), js_on_load="dailies.copyButtons(element)")
        recipe_json = gr.JSON(label="Recipe (JSON)", elem_id="detail-recipe", open=False)
        with gr.Accordion("Report", open=False, elem_id="detail-report"):
            reason = gr.Textbox(label="What is wrong with it?", lines=2, max_length=REASON_MAX, elem_id="report-reason")
            report = gr.Button("Send to the owners", size="sm", elem_id="report-send")
            reported = gr.Markdown("", elem_id="report-status")
    return Detail(
        column, video, prompt, reuse, elsewhere, close, share, recipe_json, reason, report, reported, gr.State("")
    )


def wire(service: Service, grid: gr.HTML, detail: Detail) -> None:
    def pick(evt: CardClick) -> dict[gr.components.Component, Any]:
        """A click on the grid: open the card's generation, ignoring clicks beside the cards."""
        return open_detail(service, detail, evt.id) if valid_id(evt.id) else gr.skip()

    def report(
        generation_id: str, reason: str, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> tuple[Any, str]:
        visitor = of_page(request.request, profile and profile.username, service.settings)
        try:
            service.takedown.report(generation_id, {"reason": reason}, visitor)
        except ApiError as exc:
            return gr.skip(), exc.message  # the reason stays, to send again
        return "", "Thank you: the owners will look at it."

    detail.report.click(
        report, [detail.generation_id, detail.reason], [detail.reason, detail.reported], api_visibility="private"
    )
    grid.click(pick, None, detail.outputs, api_visibility="private", queue=False).then(
        None, js="() => dailies.scrollTo('#detail', {behavior: 'smooth'})"
    )
    detail.close.click(
        lambda: {detail.column: gr.update(visible=False), detail.video: ""},
        None,
        {detail.column, detail.video},
        api_visibility="private",
        queue=False,
    )
