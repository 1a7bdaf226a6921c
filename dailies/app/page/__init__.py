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

from dailies.app import visitors, zerogpu
from dailies.app.errors import ApiError
from dailies.app.page import compare, detail, gallery, generate, job_list, on_zerogpu
from dailies.app.page.clicks import CardClick
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
            on_zerogpu.wire(service, demo, form)
        job_list.wire(service, demo, jobs, form.error)
        compare.wire(service, demo, comparison)
        gallery.wire(service, tabs, grid)
        detail.wire(service, grid.grid, view)
        _wire_across(service, demo, tabs, form, jobs, grid, view)
        _programs_api(service)
    return demo


def _wire_across(
    service: Service,
    demo: gr.Blocks,
    tabs: gr.Tabs,
    form: generate.Form,
    jobs: job_list.JobList,
    grid: gallery.Gallery,
    view: detail.Detail,
) -> None:
    """What crosses parts: "Use these settings" (the detail view, a job card) and "Try on
    another backend" (the detail view, a `?try=<id>` link) fill the form; `?g=<id>` opens a
    generation in the gallery."""
    filled = {*form.filled, tabs}
    quiet: dict[str, Any] = {"api_visibility": "private", "queue": False}

    def to_form(recipe: dict[str, Any], version: int) -> dict[gr.components.Component, Any]:
        return {**generate.fill(service, form, recipe, version), tabs: gr.Tabs(selected="generate")}

    view.reuse.click(
        lambda generation_id, version: to_form(service.generation(generation_id), version),
        [view.generation_id, form.version],
        filled,
        **quiet,
    ).then(None, js="() => dailies.scrollTo('#prompt')")
    view.elsewhere.click(
        lambda generation_id, version: to_form(generate.elsewhere(service, service.generation(generation_id)), version),
        [view.generation_id, form.version],
        filled,
        **quiet,
    ).then(None, js="() => dailies.scrollTo('#backend')")

    def card_reuse(ids: list[str] | None, version: int, evt: CardClick) -> dict[gr.components.Component, Any]:
        """A job card's "Use these settings" (its other buttons are job_list's)."""
        if evt.action != "reuse" or evt.id not in (ids or []):
            return gr.skip()
        try:
            request = service.jobs.status(evt.id).request
        except ApiError:
            return gr.skip()
        return to_form(generate.job_recipe(request), version)

    jobs.listing.click(card_reuse, [jobs.my_jobs, form.version], filled, **quiet)

    def opened_by_link(version: int, request: gr.Request) -> dict[gr.components.Component, Any]:
        """`?g=<id>` opens the generation in the gallery; `?try=<id>` fills the form with it on
        another backend."""
        query = request.query_params if request else {}
        tried, opened = query.get("try", ""), query.get("g", "")
        if valid_id(tried):
            try:
                recipe = generate.elsewhere(service, service.generation(tried))
            except ApiError:
                return gr.skip()
            return to_form(recipe, version)
        if not valid_id(opened):
            return gr.skip()
        return {
            **detail.open_detail(service, view, opened),
            **gallery.first_page(service, grid, "", ""),
            tabs: gr.Tabs(selected="gallery"),
        }

    demo.load(opened_by_link, form.version, {*view.outputs, *grid.page_outputs, *filled}, **quiet)


def _not_text(**args: Any) -> dict[str, Any] | None:
    """The error for an argument that is not text (a program may send any JSON value), or None."""
    name = next((name for name, value in args.items() if not isinstance(value, str)), None)
    return None if name is None else ApiError(422, "invalid_field", f"{name} must be text", name).body()


def _programs_api(service: Service) -> None:
    def job_status(job_id: str) -> dict[str, Any]:
        """One job's status, as GET /api/v1/jobs/{id} answers."""
        if refused := _not_text(job_id=job_id):
            return refused
        try:
            return service.jobs.status(job_id).to_json()
        except ApiError as exc:
            return exc.body()

    def gallery_items(q: str, backend: str) -> list[dict[str, Any]]:
        """The newest matching generations, as GET /api/v1/generations lists them."""
        if refused := _not_text(q=q, backend=backend):
            return [refused]
        return gallery.listing(service, q, backend)["items"]

    def generation(generation_id: str) -> tuple[str, str, dict[str, Any]]:
        """One generation's video URL, prompt and recipe."""
        if refused := _not_text(generation_id=generation_id):
            return "", "", refused
        try:
            g = service.generation(generation_id)
        except ApiError as exc:
            return "", "", exc.body()
        return g["video_url"], g["prompt"], detail.recipe(g)

    def cancel(job_id: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict[str, Any]:
        """Cancel one of the caller's jobs, as POST /api/v1/jobs/{id}/cancel answers."""
        if refused := _not_text(job_id=job_id):
            return refused
        visitor = visitors.of_page(request.request, profile and profile.username, service.settings)
        try:
            return service.jobs.cancel(job_id, visitor)
        except ApiError as exc:
            return exc.body()

    gr.api(job_status, api_name="job_status", queue=False)
    gr.api(cancel, api_name="cancel", queue=False)
    gr.api(gallery_items, api_name="gallery", queue=False)
    gr.api(generation, api_name="generation", queue=False)
