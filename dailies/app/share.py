"""Share pages rendered by the server: `/g/<id>` (one generation) and `/c/<group id>` (a comparison).

They are light (no Gradio, one stylesheet, one small script for the synced players) and carry
Open Graph and Twitter card tags, so a link pasted in a chat unfurls with the prompt, the poster
and the video. Every prompt goes through `html.escape`: it is text here as everywhere.
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


def recipe_rows(g: dict[str, Any]) -> list[tuple[str, str]]:
    """The recipe as a visitor reads it (label, value)."""
    rows = [
        ("Backend", display_name(g["backend"])),
        ("Model", g["model"]),
        ("Seed", "random (not honoured)" if g.get("seed") is None else str(g["seed"])),
        ("Size", f"{g['width']}×{g['height']}"),
        ("Length", f"{g['duration_s']:g} s, {g['num_frames']} frames at {g['fps']} fps"),
    ]
    if g.get("negative_prompt"):
        rows.append(("Negative prompt", g["negative_prompt"]))
    rows += [(k.replace("_", " ").capitalize(), str(v)) for k, v in sorted((g.get("params") or {}).items())]
    rows.append(("Time", timing(g)))
    rows.append(("Made", g["created_at"][:16].replace("T", " ") + " UTC"))
    return rows


def _meta(base: str, page_url: str, heading: str, description: str, g: dict[str, Any] | None) -> str:
    tags = [
        ("property", "og:type", "video.other" if g else "website"),
        ("property", "og:site_name", "Dailies"),
        ("property", "og:title", heading),
        ("property", "og:description", description),
        ("property", "og:url", page_url),
        ("name", "twitter:card", "summary_large_image" if g else "summary"),
        ("name", "twitter:title", heading),
        ("name", "twitter:description", description),
    ]
    if g:
        poster, video = urljoin(base, g["poster_url"]), urljoin(base, g["video_url"])
        tags += [
            ("property", "og:image", poster),
            ("property", "og:image:width", str(g["width"])),
            ("property", "og:image:height", str(g["height"])),
            ("property", "og:video", video),
            ("property", "og:video:type", "video/mp4"),
            ("property", "og:video:width", str(g["width"])),
            ("property", "og:video:height", str(g["height"])),
            ("name", "twitter:image", poster),
        ]
        if video.startswith("https://"):
            tags.append(("property", "og:video:secure_url", video))
    return "\n".join(f'<meta {kind}="{name}" content="{escape(value)}">' for kind, name, value in tags)


def page(
    base: str, page_url: str, heading: str, description: str, g: dict[str, Any] | None, body: str, head: str = ""
) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(heading)} · Dailies</title>
<meta name="description" content="{escape(description)}">
{_meta(base, page_url, heading, description, g)}
<link rel="stylesheet" href="{STATIC_URL}/share.css">
<link rel="stylesheet" href="{STATIC_URL}/compare.css">
<script src="{STATIC_URL}/compare.js" defer></script>
{head}
</head>
<body>
<header class="share-top"><a href="/" class="share-brand">Dailies</a>
<span>open text-to-video, side by side</span></header>
<main class="share-main">
{body}
</main>
</body>
</html>"""


def _recipe(g: dict[str, Any]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in recipe_rows(g))
    return f'<dl class="share-recipe">{items}</dl>'


def generation_page(base: str, g: dict[str, Any]) -> str:
    heading = title(g["prompt"])
    description = f"{display_name(g['backend'])} · {g['model']} · {g['duration_s']:g} s, made with Dailies"
    compare = f'<a class="share-button" href="/c/{g["group"]}">See the comparison</a>' if g.get("group") else ""
    body = f"""<article class="share-one">
<video class="share-video" src="{escape(g["video_url"])}" poster="{escape(g["poster_url"])}" width="{g["width"]}"
 height="{g["height"]}" controls muted loop playsinline preload="metadata"></video>
<h1 class="share-prompt">{escape(g["prompt"])}</h1>
<p class="share-actions"><a class="share-button primary" href="/?g={g["id"]}">Open in Dailies</a>
<a class="share-button" href="{escape(g["video_url"])}" download="dailies-{g["id"]}.mp4">Download</a>{compare}</p>
{_recipe(g)}
</article>
<script>
// Autoplay only for visitors who have not asked for less motion.
if (!matchMedia("(prefers-reduced-motion: reduce)").matches) document.querySelector(".share-video").autoplay = true;
</script>"""
    return page(base, urljoin(base, f"g/{g['id']}"), heading, description, g, body)


def _column(job: dict[str, Any]) -> str:
    g = job.get("generation")
    name = escape(display_name(job.get("backend") or (g or {}).get("backend", "")))
    if g:
        return f"""<figure class="share-column" data-status="succeeded" data-backend="{escape(g["backend"])}">
<video class="dailies-compare-video" src="{escape(g["video_url"])}" poster="{escape(g["poster_url"])}"
 width="{g["width"]}" height="{g["height"]}" muted playsinline preload="auto"></video>
<figcaption><strong>{name}</strong> <span>{escape(g["model"])}</span>
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
<div class="share-pending">{escape(detail)}</div><figcaption><strong>{name}</strong></figcaption></figure>"""


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
    return (
        f'<section class="dailies-compare" data-group="{group["id"]}" data-status="{group["status"]}">'
        f'{controls}<div class="dailies-compare-grid">{columns}</div></section>'
    )


def compare_page(base: str, group: dict[str, Any]) -> str:
    done = [j["generation"] for j in group["jobs"] if j.get("generation")]
    names = ", ".join(display_name(j.get("backend") or "") for j in group["jobs"])
    heading = title(group["prompt"])
    description = f"One prompt on {len(group['jobs'])} backends side by side ({names}), made with Dailies"
    body = f"""<h1 class="share-prompt">{escape(group["prompt"])}</h1>
{compare_block(group)}
<p class="share-actions"><a class="share-button primary" href="/?c={group["id"]}">Open in Dailies</a></p>"""
    head = f'<meta http-equiv="refresh" content="{RUNNING_REFRESH_S}">' if group["status"] == "running" else ""
    return page(base, urljoin(base, f"c/{group['id']}"), heading, description, done[0] if done else None, body, head)


def router(service: Service) -> APIRouter:
    pages = APIRouter()

    def not_found(what: str) -> HTMLResponse:
        body = f'<h1>Not found</h1><p>There is no {escape(what)} here. <a href="/">Open Dailies</a></p>'
        return HTMLResponse(page("/", "/", "Not found", "Dailies", None, body), status_code=404)

    @pages.get("/g/{generation_id}", response_class=HTMLResponse)
    def generation(generation_id: str, request: Request) -> HTMLResponse:
        g = service.stored_generation(generation_id) if valid_id(generation_id) else None
        if g is None:
            return not_found("generation")
        return HTMLResponse(generation_page(base_url(request, service.settings.trust_forwarded), g))

    @pages.get("/c/{group_id}", response_class=HTMLResponse)
    def comparison(group_id: str, request: Request) -> HTMLResponse:
        try:
            group = service.groups.status(group_id)
        except ApiError:
            return not_found("comparison")
        return HTMLResponse(compare_page(base_url(request, service.settings.trust_forwarded), group))

    return pages
