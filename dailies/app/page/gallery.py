"""The Gallery tab: a search box, a backend filter, the order, the poster grid and paging.

Paging keeps a stack of cursors, [cursor of page 1, cursor of page 2, ...]; its last entry is
the cursor of the next page, None when there is none.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import gradio as gr

import backends
from dailies.app import assets
from dailies.app.index import GalleryQuery
from dailies.app.names import short_name
from dailies.app.service import Service

PAGE_SIZE = 24
T = TypeVar("T")


@dataclass(frozen=True)
class Gallery:
    search: gr.Textbox
    search_button: gr.Button
    backend: gr.Dropdown
    order: gr.Dropdown
    grid: gr.HTML
    previous: gr.Button
    where: gr.Markdown
    following: gr.Button
    cursors: gr.State

    @property
    def filters(self) -> list[gr.components.Component]:
        return [self.search, self.backend, self.order]

    @property
    def page_outputs(self) -> set[gr.components.Component]:
        """What a page of the grid sets (`first_page`, `following`, `previous`)."""
        return {self.grid, self.cursors, self.previous, self.where, self.following}


def ago(created_at: str, now: datetime | None = None) -> str:
    """'5 min ago', '3 h ago', '2 d ago' from an ISO time."""
    seconds = ((now or datetime.now(UTC)) - datetime.fromisoformat(created_at)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


def cards_html(items: list[dict[str, Any]], searched: bool = False) -> str:
    """The poster grid: lazy-loaded posters; the video loads only on hover or tap (static/gallery.js).
    One caption per card (the prompt), then backend, age and a mark for a side-by-side."""
    if not items:
        text = "Nothing matches this search." if searched else "No generations yet: make the first on the Generate tab."
        return f'<p class="dailies-empty">{text}</p>'
    cards = []
    for g in items:
        prompt = html.escape(g["prompt"])
        mark = '<span class="dailies-card-mark">side by side</span>' if g.get("group") else ""
        if g["has_audio"]:
            mark += '<span class="dailies-card-mark dailies-card-sound" title="with sound">♪ sound</span>'
        cards.append(
            f'<button type="button" class="dailies-card" data-id="{g["id"]}" '
            f'data-video="{html.escape(g["video_url"])}" title="{prompt}">'
            f'<span class="dailies-card-media"><img src="{html.escape(g["poster_url"])}" loading="lazy" '
            f'decoding="async" alt="" width="{g["width"]}" height="{g["height"]}"></span>'
            f'<span class="dailies-card-prompt">{html.escape(g["prompt"][:140])}</span>'
            f'<span class="dailies-card-meta"><span class="dailies-card-when">'
            f"{html.escape(short_name(g['backend']))} · {ago(g['created_at'])}</span>{mark}</span></button>"
        )
    return f'<div class="dailies-grid">{"".join(cards)}</div>'


ORDERS = [("Newest first", "newest"), ("Oldest first", "oldest")]


def listing(service: Service, q: str, backend: str, cursor: str | None = None, order: str = "newest") -> dict[str, Any]:
    """One page of generations as GET /api/v1/generations lists them; empty filters match all."""
    return service.generations(GalleryQuery(PAGE_SIZE, cursor, q or None, backend or None, None, order == "oldest"))


Shown = dict[gr.components.Component, Any]


def _shown(service: Service, gallery: Gallery, q: str, backend: str, order: str, stack: list[str | None]) -> Shown:
    """Show the page whose cursor ends `stack`; push the cursor of the page after it."""
    found = listing(service, q, backend, stack[-1], order)
    nxt = found["next_cursor"]
    return {
        gallery.grid: cards_html(found["items"], searched=bool(q or backend)),
        gallery.cursors: stack + [nxt],
        gallery.previous: gr.update(interactive=len(stack) > 1),
        gallery.where: f"Page {len(stack)}" if found["items"] and (nxt or len(stack) > 1) else "",
        gallery.following: gr.update(interactive=nxt is not None),
    }


def first_page(service: Service, gallery: Gallery, q: str, backend: str, order: str = "newest") -> Shown:
    return _shown(service, gallery, q, backend, order, [None])


def following(service: Service, gallery: Gallery, q: str, backend: str, order: str, stack: list[str | None]) -> Shown:
    if stack[-1] is None:
        return gr.skip()
    return _shown(service, gallery, q, backend, order, stack)


def previous(service: Service, gallery: Gallery, q: str, backend: str, order: str, stack: list[str | None]) -> Shown:
    return _shown(service, gallery, q, backend, order, stack[:-2] or [None])


def layout(between: Callable[[], T]) -> tuple[Gallery, T]:
    """The filters, then what `between` lays out (the detail view), then the grid and paging."""
    # One row on a desktop; on a phone it wraps to search + button, then the two menus.
    with gr.Row(equal_height=True, elem_id="gallery-filters"):
        search = gr.Textbox(
            label="Search prompts", elem_id="gallery-search", scale=3, min_width=190, placeholder="lighthouse at dusk"
        )
        search_button = gr.Button("Search", elem_id="gallery-search-button", scale=0, min_width=80)
        backend = gr.Dropdown(
            [("All backends", "")] + [(short_name(n), n) for n in backends.BACKEND_CLASSES],
            value="",
            label="Backend",
            elem_id="gallery-backend",
            min_width=140,
        )
        order = gr.Dropdown(ORDERS, value="newest", label="Sort", elem_id="gallery-order", min_width=140)
    middle = between()
    grid = gr.HTML(
        cards_html([]), elem_id="gallery-grid", head=assets.page_head(), js_on_load="dailies.gallery(element, trigger)"
    )
    with gr.Row(elem_id="gallery-paging", equal_height=True):
        previous_button = gr.Button("← Previous", elem_id="gallery-prev", size="sm", interactive=False)
        where = gr.Markdown("", elem_id="gallery-page")
        following_button = gr.Button("Next →", elem_id="gallery-next", size="sm", interactive=False)
    gallery = Gallery(
        search, search_button, backend, order, grid, previous_button, where, following_button, gr.State([None])
    )
    return gallery, middle


def wire(service: Service, tabs: gr.Tabs, gallery: Gallery) -> None:
    quiet = {"api_visibility": "private", "queue": False}
    gr.on(
        [gallery.search.submit, gallery.search_button.click, gallery.backend.change, gallery.order.change, tabs.select],
        lambda q, name, order: first_page(service, gallery, q, name, order),
        gallery.filters,
        gallery.page_outputs,
        **quiet,
    )
    # A new page starts at its top: on a phone the buttons are far below it.
    to_top = "() => dailies.scrollTo('#gallery-grid', {block: 'start'})"
    for button, turn in ((gallery.following, following), (gallery.previous, previous)):
        button.click(
            lambda q, name, order, stack, turn=turn: turn(service, gallery, q, name, order, stack),
            gallery.filters + [gallery.cursors],
            gallery.page_outputs,
            **quiet,
        ).then(None, js=to_top)
