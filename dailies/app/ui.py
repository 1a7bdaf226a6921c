"""The Gradio page: a Generate tab that follows the visitor's jobs, and a Gallery tab.

Handlers call the same Service as the JSON API, so the checks and errors are the same. Each
event a program may want has an `api_name`. Prompts are shown only as text (escaped HTML,
text boxes), never as markup.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import gradio as gr

import backends
from dailies.app.api import client_id
from dailies.app.errors import ApiError
from dailies.app.service import Service
from dailies.contract.spec import valid_id

MAX_TRACKED = 12
PAGE_SIZE = 24
STATIC = Path(__file__).resolve().parents[2] / "static"
GALLERY_JS = (STATIC / "gallery.js").read_text(encoding="utf-8")
JOBS_JS = (STATIC / "jobs.js").read_text(encoding="utf-8")
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
    "negative_prompt",
    "params",
    "timings",
    "created_at",
)


def _backend_choices(service: Service) -> list[tuple[str, str]]:
    choices = []
    for info in service.describe_backends():
        label = info["display_name"] + ("" if info["available"] else " (unavailable)")
        choices.append((label, info["name"]))
    return choices


def _backend_note(service: Service, name: str, width: float | None = None, height: float | None = None) -> str:
    info = next(b for b in service.describe_backends() if b["name"] == name)
    lines = [html.escape(info["description"])]
    if not info["available"]:
        lines.append(f"**Unavailable:** {html.escape(info['unavailable_reason'] or '')}")
    rec = info["size"]["recommended_min"]
    if rec and ((width and width < rec) or (height and height < rec)):
        lines.append(f"Sizes under {rec} px are below what the model card recommends; expect poor results.")
    if not info["seed"]:
        lines.append("This backend does not honour a seed.")
    return "\n\n".join(lines)


def _jobs_html(jobs: list[str] | None) -> str:
    """The ids the page's script follows (static/jobs.js draws each job from its pushed status)."""
    ids = " ".join(j for j in jobs or [] if valid_id(j))
    return f'<ul class="dailies-jobs" data-ids="{ids}"></ul>'


def _cards_html(items: list[dict[str, Any]]) -> str:
    """The poster grid: lazy-loaded posters; the video loads only on hover or tap (static/gallery.js)."""
    if not items:
        return '<p class="dailies-empty">No generations here yet.</p>'
    cards = []
    for g in items:
        prompt = html.escape(g["prompt"])
        cards.append(
            f'<button type="button" class="dailies-card" data-id="{g["id"]}" '
            f'data-video="{html.escape(g["video_url"])}" title="{prompt}">'
            f'<img src="{html.escape(g["poster_url"])}" loading="lazy" decoding="async" alt="" '
            f'width="{g["width"]}" height="{g["height"]}">'
            f'<span class="dailies-card-meta">{html.escape(g["backend"])} · {g["duration_s"]:g} s</span>'
            f'<span class="dailies-card-prompt">{html.escape(g["prompt"][:140])}</span></button>'
        )
    return f'<div class="dailies-grid">{"".join(cards)}</div>'


def _player_html(g: dict[str, Any]) -> str:
    """The detail player: the browser streams the file itself (from the Hub for a public dataset)."""
    return (
        f'<video class="dailies-player" controls autoplay muted loop playsinline preload="metadata" '
        f'poster="{html.escape(g["poster_url"])}" src="{html.escape(g["video_url"])}" '
        f'width="{g["width"]}" height="{g["height"]}"></video>'
    )


def _share_html(generation_id: str) -> str:
    return f'<a class="dailies-share" href="/?g={generation_id}">Share link: /?g={generation_id}</a>'


def build(service: Service) -> gr.Blocks:
    settings = service.settings
    names = list(backends.BACKEND_CLASSES)
    default_backend = next((n for n in names if service.availability(backends.get(n, settings)).usable), names[0])
    first = backends.get(default_backend, settings)

    with gr.Blocks(title="Dailies", analytics_enabled=False) as demo:
        gr.Markdown(
            "# Dailies\nOpen text-to-video, side by side, through one queue. Every result is kept in the open gallery."
        )
        my_jobs = gr.BrowserState([], storage_key="dailies-jobs")
        shown = gr.State("")  # generation id in the player: only a newer one replaces it
        params = gr.State({p.name: p.default for p in first.params})

        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=3):
                        prompt = gr.Textbox(
                            label="Prompt",
                            lines=3,
                            max_length=2000,
                            elem_id="prompt",
                            placeholder="A paper boat drifting down a rainy street at dusk",
                        )
                        negative = gr.Textbox(
                            label="Negative prompt", elem_id="negative-prompt", visible=first.negative_prompt
                        )
                        backend = gr.Dropdown(
                            _backend_choices(service), value=default_backend, label="Backend", elem_id="backend"
                        )
                        note = gr.Markdown(_backend_note(service, default_backend), elem_id="backend-note")
                        with gr.Row():
                            duration = gr.Slider(
                                0.1,
                                8,
                                value=first.frames.default / first.fps,
                                step=0.1,
                                label="Duration (s)",
                                elem_id="duration",
                            )
                            width = gr.Slider(
                                first.size.minimum,
                                first.size.maximum,
                                value=first.size.default[0],
                                step=first.size.multiple,
                                label="Width",
                                elem_id="width",
                            )
                            height = gr.Slider(
                                first.size.minimum,
                                first.size.maximum,
                                value=first.size.default[1],
                                step=first.size.multiple,
                                label="Height",
                                elem_id="height",
                            )
                        with gr.Row():
                            random_seed = gr.Checkbox(True, label="Random seed", elem_id="random-seed")
                            seed = gr.Number(None, label="Seed", precision=0, minimum=0, elem_id="seed")
                        with gr.Accordion("Advanced settings", open=False):

                            @gr.render(inputs=backend)
                            def advanced(name: str) -> None:
                                for p in backends.get(name, settings).params:
                                    kwargs = {
                                        "label": p.describe()["label"],
                                        "info": p.help,
                                        "key": f"{name}-{p.name}",
                                        "elem_id": f"param-{p.name}",
                                        "interactive": True,
                                    }
                                    if p.choices:
                                        comp = gr.Dropdown(list(p.choices), value=p.default, **kwargs)
                                    elif p.type is bool:
                                        comp = gr.Checkbox(p.default, **kwargs)
                                    # A None default means "the model's own": an empty Number, not a slider.
                                    elif p.minimum is not None and p.maximum is not None and p.default is not None:
                                        comp = gr.Slider(
                                            p.minimum,
                                            p.maximum,
                                            value=p.default,
                                            step=1 if p.type is int else 0.1,
                                            **kwargs,
                                        )
                                    else:
                                        comp = gr.Number(p.default, **kwargs)
                                    comp.change(
                                        lambda v, s, n=p.name: {**s, n: v},
                                        [comp, params],
                                        params,
                                        api_visibility="private",
                                        queue=False,
                                    )

                        with gr.Row():
                            submit = gr.Button("Generate", variant="primary", elem_id="submit")
                            cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
                        error = gr.Markdown("", elem_id="submit-error")
                    with gr.Column(scale=2):
                        video = gr.Video(label="Latest video", elem_id="latest-video", autoplay=True, interactive=False)
                        used_seed = gr.Textbox(label="Seed used", interactive=False, elem_id="used-seed")
                        jobs_html = gr.HTML(_jobs_html([]), elem_id="jobs", js_on_load=JOBS_JS)

            with gr.Tab("Gallery", id="gallery"):
                with gr.Row(equal_height=True):
                    search = gr.Textbox(
                        label="Search prompts", elem_id="gallery-search", scale=3, placeholder="lighthouse at dusk"
                    )
                    gallery_backend = gr.Dropdown(
                        [("All backends", "")] + [(n, n) for n in names],
                        value="",
                        label="Backend",
                        elem_id="gallery-backend",
                        scale=1,
                    )
                with gr.Column(visible=False, elem_id="detail") as detail:
                    detail_video = gr.HTML("", elem_id="detail-video", js_on_load=None)
                    detail_prompt = gr.Textbox(label="Prompt", interactive=False, elem_id="detail-prompt")
                    with gr.Row():
                        reuse = gr.Button("Use these settings", elem_id="reuse", variant="primary", size="sm")
                        close_detail = gr.Button("Close", elem_id="detail-close", size="sm")
                    detail_share = gr.HTML("", elem_id="detail-share", js_on_load=None)
                    detail_recipe = gr.JSON(label="Recipe", elem_id="detail-recipe", open=False)
                grid = gr.HTML(_cards_html([]), elem_id="gallery-grid", js_on_load=GALLERY_JS)
                with gr.Row():
                    prev_page = gr.Button("Newer", elem_id="gallery-prev", size="sm", interactive=False)
                    next_page = gr.Button("Older", elem_id="gallery-next", size="sm", interactive=False)
                cursors = gr.State([None])  # cursor of each page shown so far; the last is the next page
                detail_id = gr.State("")

        # --- Generate -------------------------------------------------------------------------

        def on_backend(name: str, w: float, h: float):
            b = backends.get(name, settings)
            return (
                gr.update(value=_backend_note(service, name, w, h)),
                gr.update(visible=b.negative_prompt),
                gr.update(minimum=b.size.minimum, maximum=b.size.maximum, step=b.size.multiple),
                gr.update(minimum=b.size.minimum, maximum=b.size.maximum, step=b.size.multiple),
                gr.update(interactive=b.seeded),
                {p.name: p.default for p in b.params},
            )

        backend.change(
            on_backend,
            [backend, width, height],
            [note, negative, width, height, random_seed, params],
            api_visibility="private",
            queue=False,
        )
        for size in (width, height):
            size.release(
                lambda name, w, h: _backend_note(service, name, w, h),
                [backend, width, height],
                note,
                api_visibility="private",
                queue=False,
            )

        def do_submit(
            text: str,
            neg: str,
            name: str,
            seconds: float,
            w: float,
            h: float,
            rand: bool,
            seed_value: float | None,
            extra: dict,
            jobs: list,
            request: gr.Request,
        ):
            body: dict[str, Any] = {
                "prompt": text,
                "backend": name,
                "duration_s": seconds,
                "width": int(w),
                "height": int(h),
                **(extra or {}),
            }
            if neg:
                body["negative_prompt"] = neg
            if not rand and seed_value is not None:
                body["seed"] = int(seed_value)
            try:
                answer = service.jobs.submit(body, client_id(request.request, settings.trust_forwarded))
            except ApiError as exc:
                field = f" ({exc.field})" if exc.field else ""
                return f"**Not queued{field}:** {html.escape(exc.message)}", jobs, gr.skip()
            tracked = ([answer["id"]] + list(jobs or []))[:MAX_TRACKED]
            return "", tracked, _jobs_html(tracked)

        submit.click(
            do_submit,
            [prompt, negative, backend, duration, width, height, random_seed, seed, params, my_jobs],
            [error, my_jobs, jobs_html],
            api_name="submit",
            queue=False,
        )

        def show_video(current: str, evt: gr.EventData):
            """A job the page saw succeed: its video, unless a newer one is already shown (ids sort by time)."""
            job_id = str((evt._data or {}).get("id", ""))
            if not valid_id(job_id) or job_id <= current:
                return gr.skip(), gr.skip(), gr.skip()
            try:
                result = service.jobs.status(job_id)["result"]
            except ApiError:
                return gr.skip(), gr.skip(), gr.skip()
            row = service.index.get(result["generation_id"]) if result else None
            if row is None:
                return gr.skip(), gr.skip(), gr.skip()
            return str(service.dataset.root / row["video_path"]), str(result["seed"]), job_id

        jobs_html.click(show_video, shown, [video, used_seed, shown], api_visibility="private", queue=False)
        demo.load(_jobs_html, my_jobs, jobs_html, api_visibility="private", queue=False)

        def do_cancel(jobs: list) -> str:
            for job_id in jobs or []:
                try:
                    if service.jobs.status(job_id)["status"] in ("queued", "running"):
                        service.jobs.cancel(job_id)
                        return ""
                except ApiError:
                    continue
            return "Nothing to cancel."

        cancel.click(do_cancel, my_jobs, error, api_name="cancel", queue=False)

        def job_status(job_id: str) -> dict:
            """For programs: one job's status, as GET /api/v1/jobs/{id} answers."""
            try:
                return service.jobs.status(job_id)
            except ApiError as exc:
                return exc.body()

        gr.Button(visible=False).click(
            job_status, gr.Textbox(visible=False), gr.JSON(visible=False), api_name="job_status", queue=False
        )

        # --- Gallery --------------------------------------------------------------------------

        def load_page(q: str, name: str, stack: list):
            found = service.generations(limit=PAGE_SIZE, cursor=stack[-1], q=q or None, backend=name or None)
            return _cards_html(found["items"]), found["next_cursor"]

        def first_page(q: str, name: str):
            cards, nxt = load_page(q, name, [None])
            return cards, [None, nxt], gr.update(interactive=False), gr.update(interactive=nxt is not None)

        def older(q: str, name: str, stack: list):
            if stack[-1] is None:
                return (gr.skip(),) * 4
            cards, nxt = load_page(q, name, stack)
            return cards, stack + [nxt], gr.update(interactive=True), gr.update(interactive=nxt is not None)

        def newer(q: str, name: str, stack: list):
            stack = stack[:-2] or [None]
            cards, nxt = load_page(q, name, stack)
            return cards, stack + [nxt], gr.update(interactive=len(stack) > 1), gr.update(interactive=nxt is not None)

        # The stack holds [cursor of page 1, cursor of page 2, ...]; its last entry is the next page.
        page_outputs = [grid, cursors, prev_page, next_page]
        gr.on(
            [search.submit, gallery_backend.change],
            first_page,
            [search, gallery_backend],
            page_outputs,
            api_visibility="private",
            queue=False,
        )
        tabs.select(first_page, [search, gallery_backend], page_outputs, api_visibility="private", queue=False)
        next_page.click(older, [search, gallery_backend, cursors], page_outputs, api_visibility="private", queue=False)
        prev_page.click(newer, [search, gallery_backend, cursors], page_outputs, api_visibility="private", queue=False)

        def open_detail(generation_id: str):
            try:
                g = service.generation(generation_id)
            except ApiError:
                return gr.update(visible=False), "", "", {}, "", ""
            recipe = {k: g[k] for k in RECIPE_KEYS}
            return gr.update(visible=True), _player_html(g), g["prompt"], recipe, generation_id, _share_html(g["id"])

        detail_outputs = [detail, detail_video, detail_prompt, detail_recipe, detail_id, detail_share]

        def pick(evt: gr.EventData):
            picked = str((evt._data or {}).get("id", ""))
            return open_detail(picked) if valid_id(picked) else (gr.skip(),) * len(detail_outputs)

        grid.click(pick, None, detail_outputs, api_visibility="private", queue=False).then(
            None, js="() => document.getElementById('detail')?.scrollIntoView({behavior: 'smooth'})"
        )
        close_detail.click(
            lambda: (gr.update(visible=False), ""), None, [detail, detail_video], api_visibility="private", queue=False
        )

        def gallery_for_programs(q: str, name: str) -> list[dict]:
            """For programs: the newest matching generations, as GET /api/v1/generations lists them."""
            return service.generations(limit=PAGE_SIZE, q=q or None, backend=name or None)["items"]

        def generation_for_programs(generation_id: str):
            """For programs: one generation's video URL, prompt and recipe."""
            try:
                g = service.generation(generation_id)
            except ApiError as exc:
                return "", "", exc.body()
            return g["video_url"], g["prompt"], {k: g[k] for k in RECIPE_KEYS}

        hidden = {"visible": False}
        gr.Button(**hidden).click(
            gallery_for_programs,
            [gr.Textbox(**hidden), gr.Textbox(**hidden)],
            gr.JSON(**hidden),
            api_name="gallery",
            queue=False,
        )
        gr.Button(**hidden).click(
            generation_for_programs,
            gr.Textbox(**hidden),
            [gr.Textbox(**hidden), gr.Textbox(**hidden), gr.JSON(**hidden)],
            api_name="generation",
            queue=False,
        )

        def use_settings(generation_id: str):
            g = service.generation(generation_id)
            return (
                g["prompt"],
                g["negative_prompt"],
                g["backend"],
                g["duration_s"],
                g["width"],
                g["height"],
                g["seed"] is None,
                g["seed"],
                g["params"],
                gr.Tabs(selected="generate"),
            )

        reuse.click(
            use_settings,
            detail_id,
            [prompt, negative, backend, duration, width, height, random_seed, seed, params, tabs],
            api_visibility="private",
            queue=False,
        )

        def share_link(request: gr.Request):
            generation_id = request.query_params.get("g", "") if request else ""
            if not valid_id(generation_id):
                return (gr.skip(),) * (len(detail_outputs) + 5)
            return (*open_detail(generation_id), *first_page("", ""), gr.Tabs(selected="gallery"))

        demo.load(share_link, None, detail_outputs + page_outputs + [tabs], api_visibility="private", queue=False)
    return demo
