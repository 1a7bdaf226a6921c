"""The share pages' routes: `/g/<id>` (one generation) and `/c/<group id>` (a comparison); one
taken down (dailies/app/takedown.py) answers 410 Gone.

They are light (no Gradio, one stylesheet, small scripts for the synced players and autoplay)
and carry Open Graph and Twitter card tags, so a link pasted in a chat unfurls with the prompt,
the poster and the video; `/g/<id>/player` is the bare video a Twitter player card (or any site)
frames. Their HTML is in dailies/app/templates/, which escape every value: a prompt is text here
as everywhere.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from dailies.app import assets, side_by_side
from dailies.app.errors import ApiError
from dailies.app.groups import GroupStatus
from dailies.app.names import display_name, short_name
from dailies.app.recipes import recipe_rows
from dailies.app.service import Service
from dailies.contract.spec import valid_id

TITLE_MAX = 90
RUNNING_REFRESH_S = 5  # a comparison still rendering reloads itself this often (no script needed)


def title(prompt: str) -> str:
    prompt = " ".join(prompt.split())
    return prompt if len(prompt) <= TITLE_MAX else prompt[: TITLE_MAX - 1].rstrip() + "…"


def _meta(
    base: str, page_url: str, heading: str, description: str, g: dict[str, Any] | None, player: bool
) -> list[tuple[str, str, str]]:
    """Open Graph and Twitter card tags (attribute, its name, content); with `player`, a Twitter
    player card that plays `g` in the post itself (through the embeddable /g/<id>/player page)."""
    tags = [
        ("name", "description", description),
        ("property", "og:type", "video.other" if g else "website"),
        ("property", "og:site_name", "Dailies"),
        ("property", "og:title", heading),
        ("property", "og:description", description),
        ("property", "og:url", page_url),
        ("name", "twitter:card", "player" if player else "summary_large_image" if g else "summary"),
        ("name", "twitter:title", heading),
        ("name", "twitter:description", description),
    ]
    if g:
        poster, video = urljoin(base, g["poster_url"]), urljoin(base, g["video_url"])
        width, height = str(g["width"]), str(g["height"])
        tags += [
            ("property", "og:image", poster),
            ("property", "og:image:width", width),
            ("property", "og:image:height", height),
            ("property", "og:video", video),
            ("property", "og:video:type", "video/mp4"),
            ("property", "og:video:width", width),
            ("property", "og:video:height", height),
            ("name", "twitter:image", poster),
        ]
        if video.startswith("https://"):
            tags.append(("property", "og:video:secure_url", video))
        if player:
            tags += [
                ("name", "twitter:player", urljoin(base, f"g/{g['id']}/player")),
                ("name", "twitter:player:width", width),
                ("name", "twitter:player:height", height),
                ("name", "twitter:player:stream", video),
                ("name", "twitter:player:stream:content_type", "video/mp4"),
            ]
    return tags


def generation_page(base: str, g: dict[str, Any]) -> str:
    heading = title(g["prompt"])
    description = f"{display_name(g['backend'])} · {g['model']} · {g['duration_s']:g} s, made with Dailies"
    meta = _meta(base, urljoin(base, f"g/{g['id']}"), heading, description, g, player=True)
    return assets.render(
        "generation.html", heading=heading, meta=meta, g=g, comparison=g.get("group"), recipe=recipe_rows(g)
    )


def player_page(g: dict[str, Any]) -> str:
    return assets.render("player.html", heading=title(g["prompt"]), g=g)


def compare_page(base: str, group: GroupStatus) -> str:
    done = [j["generation"] for j in group.jobs if j.get("generation")]
    names = ", ".join(short_name(j.get("backend") or "") for j in group.jobs)
    heading = title(group.prompt)
    description = f"One prompt on {len(group.jobs)} backends side by side ({names}), made with Dailies"
    meta = _meta(base, urljoin(base, f"c/{group.id}"), heading, description, done[0] if done else None, player=False)
    refresh_s = RUNNING_REFRESH_S if group.status == "running" else 0
    return assets.render(
        "comparison.html", heading=heading, meta=meta, refresh_s=refresh_s, **side_by_side.values(group)
    )


def router(service: Service) -> APIRouter:
    pages = APIRouter()

    def missing(what: str, taken_down: bool = False) -> HTMLResponse:
        heading, status = ("Taken down", 410) if taken_down else ("Not found", 404)
        page = assets.render("not_found.html", heading=heading, meta=[], what=what, taken_down=taken_down)
        return HTMLResponse(page, status_code=status)

    def stored(generation_id: str) -> dict[str, Any] | HTMLResponse:
        """The generation, or the page that says why it is not here."""
        if generation_id in service.takedown.tombstones:
            return missing("generation", taken_down=True)
        found = service.stored_generation(generation_id) if valid_id(generation_id) else None
        return missing("generation") if found is None else found

    @pages.get("/g/{generation_id}", response_class=HTMLResponse)
    def generation(generation_id: str) -> HTMLResponse:
        if isinstance(g := stored(generation_id), HTMLResponse):
            return g
        return HTMLResponse(generation_page(service.settings.public_url, g))

    @pages.get("/g/{generation_id}/player", response_class=HTMLResponse)
    def player(generation_id: str) -> HTMLResponse:
        if isinstance(g := stored(generation_id), HTMLResponse):
            return g
        # The one page other sites may frame (the app sets no frame rule elsewhere, so that a Space
        # still shows inside huggingface.co); saying so here also overrides a proxy's X-Frame-Options.
        return HTMLResponse(player_page(g), headers={"Content-Security-Policy": "frame-ancestors *"})

    @pages.get("/c/{group_id}", response_class=HTMLResponse)
    def comparison(group_id: str) -> HTMLResponse:
        # A comparison with a generation taken down is gone as a whole: side by side, the others
        # would still frame the one removed. Each of them keeps its own /g/ page.
        if service.takedown.tombstones.group_gone(group_id):
            return missing("comparison", taken_down=True)
        try:
            group = service.groups.status(group_id)
        except ApiError:
            return missing("comparison")
        return HTMLResponse(compare_page(service.settings.public_url, group))

    return pages
