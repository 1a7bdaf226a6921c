"""The Gradio page, in its parts: the Generate tab (form and job list) and the Gallery tab
(grid and detail view). Each part lays out its components and wires its own events; this
module joins them and wires what crosses parts ("Use these settings", share links).

Handlers call the same Service as the JSON API, so the checks and errors are the same. Events a
program may want have an `api_name`; endpoints only programs use are `gr.api` functions.
Prompts are shown only as text (escaped HTML, text boxes), never as markup.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from dailies.app import zerogpu
from dailies.app.errors import ApiError
from dailies.app.page import compare, detail, gallery, generate, job_list, on_zerogpu
from dailies.app.service import Service
from dailies.contract.spec import valid_id


def build(service: Service) -> gr.Blocks:
    with gr.Blocks(title="Dailies", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Dailies\nOpen text-to-video, side by side, through one queue. Every result is kept in the open gallery."
        )
        if service.settings.oauth:
            # Signed-in visitors get their own limits, and backends that cost money may need it.
            gr.LoginButton(elem_id="sign-in")
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                form, jobs, comparison, compare_on = generate.layout(service, demo)
            with gr.Tab("Gallery", id="gallery"):
                grid, view = gallery.layout(detail.layout)
        generate.wire(service, form, jobs, comparison, compare_on)
        if zerogpu.enabled():
            on_zerogpu.wire(service, demo, form, jobs)
        job_list.wire(service, demo, jobs, form.error)
        compare.wire(service, demo, comparison)
        gallery.wire(service, tabs, grid)
        detail.wire(service, grid.grid, view)
        _wire_across(service, demo, tabs, form, grid, view)
        _programs_api(service)
    return demo


def _wire_across(
    service: Service,
    demo: gr.Blocks,
    tabs: gr.Tabs,
    form: generate.Form,
    grid: gallery.Gallery,
    view: detail.Detail,
) -> None:
    view.reuse.click(
        lambda generation_id, version: (
            *generate.fill(service, service.generation(generation_id), version),
            gr.Tabs(selected="generate"),
        ),
        [view.generation_id, form.version],
        form.filled_by_recipe + [tabs],
        api_visibility="private",
        queue=False,
    )

    def share_link(request: gr.Request) -> tuple:
        generation_id = request.query_params.get("g", "") if request else ""
        if not valid_id(generation_id):
            return (gr.skip(),) * (len(view.outputs) + len(grid.page_outputs) + 1)
        return (
            *detail.open_detail(service, generation_id),
            *gallery.first_page(service, "", ""),
            gr.Tabs(selected="gallery"),
        )

    demo.load(share_link, None, view.outputs + grid.page_outputs + [tabs], api_visibility="private", queue=False)


def _programs_api(service: Service) -> None:
    def job_status(job_id: str) -> dict[str, Any]:
        """One job's status, as GET /api/v1/jobs/{id} answers."""
        try:
            return service.jobs.status(job_id).to_json()
        except ApiError as exc:
            return exc.body()

    def gallery_items(q: str, backend: str) -> list[dict[str, Any]]:
        """The newest matching generations, as GET /api/v1/generations lists them."""
        return gallery.newest(service, q, backend)["items"]

    def generation(generation_id: str) -> tuple[str, str, dict[str, Any]]:
        """One generation's video URL, prompt and recipe."""
        try:
            g = service.generation(generation_id)
        except ApiError as exc:
            return "", "", exc.body()
        return g["video_url"], g["prompt"], detail.recipe(g)

    def cancel(job_id: str) -> dict[str, Any]:
        """Cancel one job, as POST /api/v1/jobs/{id}/cancel answers."""
        try:
            return service.jobs.cancel(job_id)
        except ApiError as exc:
            return exc.body()

    gr.api(job_status, api_name="job_status", queue=False)
    gr.api(cancel, api_name="cancel", queue=False)
    gr.api(gallery_items, api_name="gallery", queue=False)
    gr.api(generation, api_name="generation", queue=False)
