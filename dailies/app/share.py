"""Share pages rendered by the server: `/g/<id>` (one generation) and `/c/<group id>` (a comparison).

They are light (no Gradio, one stylesheet, one small script for the synced players) and carry
Open Graph and Twitter card tags, so a link pasted in a chat unfurls with the prompt, the poster
and the video; `/g/<id>/player` is the bare video a Twitter player card (or any site) frames.
Every prompt goes through `html.escape`: it is text here as everywhere.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urljoin

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

import backends
from dailies.app.errors import ApiError
from dailies.app.service import Service
from dailies.contract.spec import valid_id

STATIC_URL = "/dailies-static"  # off Gradio's own /static and /assets
TITLE_MAX = 90
RUNNING_REFRESH_S = 5  # a comparison still rendering reloads itself this often (no script needed)


def base_url(request: Request, trust_forwarded: bool) -> str:
    """This app's address as the visitor sees it (behind the Spaces proxy: the forwarded one)."""
    scheme, host = request.url.scheme, request.headers.get("host") or request.url.netloc
    if trust_forwarded:
        scheme = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", host).split(",")[0].strip()
    return f"{scheme}://{host}/"


def title(prompt: str) -> str:
    prompt = " ".join(prompt.split())
    return prompt if len(prompt) <= TITLE_MAX else prompt[: TITLE_MAX - 1].rstrip() + "…"


def display_name(backend: str) -> str:
    return backends.BACKEND_CLASSES[backend].display_name if backend in backends.BACKEND_CLASSES else backend


def short_name(backend: str) -> str:
    """The name without its aside ("Preview (pipeline preview, not a model)" -> "Preview"), for
    places a phone gives one line: menus, cards, captions."""
    return display_name(backend).split(" (")[0]


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
    """The recipe as a visitor reads it (label, value): the share page and the page's detail view."""
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


def _meta(base: str, page_url: str, heading: str, description: str, g: dict[str, Any] | None, player: bool) -> str:
    """Open Graph and Twitter card tags; with `player`, a Twitter player card that plays `g` in the
    post itself (through the embeddable /g/<id>/player page)."""
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
    return "\n".join(f'<meta {kind}="{name}" content="{escape(value)}">' for kind, name, value in tags)


def document(heading: str, head: str, body: str, body_class: str = "") -> str:
    """The HTML around every server-rendered page: one stylesheet, the prompt as the title."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(heading)} · Dailies</title>
<link rel="stylesheet" href="{STATIC_URL}/share.css">
{head}
</head>
<body{f' class="{body_class}"' if body_class else ""}>
{body}
</body>
</html>"""


def page(heading: str, meta: str, body: str, head: str = "") -> str:
    """A share page: the Dailies bar above `body`, the synced players' script and CSS."""
    return document(
        heading,
        f"""{meta}
<link rel="stylesheet" href="{STATIC_URL}/compare.css">
<script src="{STATIC_URL}/compare.js" defer></script>
{head}""",
        f"""<header class="share-top"><a href="/" class="share-brand">Dailies</a>
<span>open text-to-video, side by side</span></header>
<main class="share-main">
{body}
</main>""",
    )


def _recipe(g: dict[str, Any]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in recipe_rows(g))
    return f'<dl class="share-recipe">{items}</dl>'


# Autoplay only for visitors who have not asked for less motion (muted, so browsers allow it).
AUTOPLAY = """<script>
if (!matchMedia("(prefers-reduced-motion: reduce)").matches) document.querySelector(".share-video").autoplay = true;
</script>"""


def _video(g: dict[str, Any]) -> str:
    return f"""<video class="share-video" src="{escape(g["video_url"])}" poster="{escape(g["poster_url"])}"
 width="{g["width"]}" height="{g["height"]}" controls muted loop playsinline preload="metadata"></video>"""


def generation_page(base: str, g: dict[str, Any]) -> str:
    heading = title(g["prompt"])
    description = f"{display_name(g['backend'])} · {g['model']} · {g['duration_s']:g} s, made with Dailies"
    compare = f'<a class="share-button" href="/c/{g["group"]}">See the comparison</a>' if g.get("group") else ""
    body = f"""<article class="share-one">
{_video(g)}
<h1 class="share-prompt">{escape(g["prompt"])}</h1>
<p class="share-actions"><a class="share-button primary" href="/?g={g["id"]}">Open in Dailies</a>
<a class="share-button" href="/?try={g["id"]}">Try on another backend</a>
<a class="share-button" href="{escape(g["video_url"])}" download="dailies-{g["id"]}.mp4">Download</a>{compare}</p>
{_recipe(g)}
</article>
{AUTOPLAY}"""
    meta = _meta(base, urljoin(base, f"g/{g['id']}"), heading, description, g, player=True)
    return page(heading, meta, body)


def player_page(g: dict[str, Any]) -> str:
    """Only the video, filling the frame: what a Twitter player card (or any site) embeds."""
    return document(title(g["prompt"]), '<meta name="robots" content="noindex">', _video(g) + AUTOPLAY, "share-player")


def _column(job: dict[str, Any]) -> str:
    g = job.get("generation")
    backend = job.get("backend") or (g or {}).get("backend", "")
    name = f'<strong title="{escape(display_name(backend))}">{escape(short_name(backend))}</strong>'
    if g:
        return f"""<figure class="share-column" data-status="succeeded" data-backend="{escape(g["backend"])}">
<video class="dailies-compare-video" src="{escape(g["video_url"])}" poster="{escape(g["poster_url"])}"
 width="{g["width"]}" height="{g["height"]}" muted playsinline preload="auto"></video>
<figcaption>{name} <span>{escape(g["model"])}</span>
<span>{escape(timing(g))}</span> <a href="/g/{g["id"]}">open</a></figcaption></figure>"""
    state = job["status"]
    if state == "running":
        detail = f"rendering, {job.get('progress', 0) * 100:.0f}%"
    elif state == "queued":
        ahead = job.get("position") or 0
        detail = f"waiting, {ahead} ahead" if ahead else "waiting, next to run"
    else:
        detail = f"{state}: {job.get('error') or ''}".rstrip(": ")
    return f"""<figure class="share-column" data-status="{escape(state)}" data-id="{escape(job["id"])}">
<div class="share-pending">{escape(detail)}</div><figcaption>{name}</figcaption></figure>"""


def compare_block(group: dict[str, Any]) -> str:
    """The videos side by side with one play, pause and scrub (static/compare.js), or each job's
    progress while it runs: the /c/ page and the page's compare view show the same block."""
    done = [j for j in group["jobs"] if j.get("generation")]
    controls = (
        """<div class="dailies-compare-controls"><button type="button" class="dailies-compare-play">Play</button>
<input type="range" class="dailies-compare-scrub" min="0" max="1" step="0.01" value="0" aria-label="Position">
<span class="dailies-compare-time">0.0 s</span></div>"""
        if len(done) > 1
        else ""
    )
    columns = "".join(_column(j) for j in group["jobs"])
    per_row = 2 if len(group["jobs"]) == 4 else len(group["jobs"])  # balanced rows: 2, 3, or 2×2
    return (
        f'<section class="dailies-compare" data-group="{group["id"]}" data-status="{group["status"]}">'
        f'{controls}<div class="dailies-compare-grid" style="--n: {per_row}">{columns}</div></section>'
    )


def compare_page(base: str, group: dict[str, Any]) -> str:
    done = [j["generation"] for j in group["jobs"] if j.get("generation")]
    names = ", ".join(short_name(j.get("backend") or "") for j in group["jobs"])
    heading = title(group["prompt"])
    description = f"One prompt on {len(group['jobs'])} backends side by side ({names}), made with Dailies"
    body = f"""<h1 class="share-prompt">{escape(group["prompt"])}</h1>
{compare_block(group)}
<p class="share-actions"><a class="share-button primary" href="/?c={group["id"]}">Open in Dailies</a></p>"""
    head = f'<meta http-equiv="refresh" content="{RUNNING_REFRESH_S}">' if group["status"] == "running" else ""
    meta = _meta(base, urljoin(base, f"c/{group['id']}"), heading, description, done[0] if done else None, player=False)
    return page(heading, meta, body, head)


def router(service: Service) -> APIRouter:
    pages = APIRouter()

    def not_found(what: str) -> HTMLResponse:
        body = f'<h1>Not found</h1><p>There is no {escape(what)} here. <a href="/">Open Dailies</a></p>'
        return HTMLResponse(page("Not found", "", body), status_code=404)

    def stored(generation_id: str) -> dict[str, Any] | None:
        return service.stored_generation(generation_id) if valid_id(generation_id) else None

    @pages.get("/g/{generation_id}", response_class=HTMLResponse)
    def generation(generation_id: str, request: Request) -> HTMLResponse:
        if (g := stored(generation_id)) is None:
            return not_found("generation")
        return HTMLResponse(generation_page(base_url(request, service.settings.trust_forwarded), g))

    @pages.get("/g/{generation_id}/player", response_class=HTMLResponse)
    def player(generation_id: str) -> HTMLResponse:
        if (g := stored(generation_id)) is None:
            return not_found("generation")
        # The one page other sites may frame (the app sets no frame rule elsewhere, so that a Space
        # still shows inside huggingface.co); saying so here also overrides a proxy's X-Frame-Options.
        return HTMLResponse(player_page(g), headers={"Content-Security-Policy": "frame-ancestors *"})

    @pages.get("/c/{group_id}", response_class=HTMLResponse)
    def comparison(group_id: str, request: Request) -> HTMLResponse:
        try:
            group = service.groups.status(group_id)
        except ApiError:
            return not_found("comparison")
        return HTMLResponse(compare_page(base_url(request, service.settings.trust_forwarded), group))

    return pages
