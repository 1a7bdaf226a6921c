"""The visitor's jobs on the Generate tab as cards, pushed: no timer, no polling.

Python renders only the ids to follow; the page's script (static/jobs.js) opens one
EventSource per unfinished job on GET /api/v1/jobs/{id}/events (fed by the app's one update
loop, dailies/app/updates.py) and draws each card from the status it is sent, the prompt as
text: its progress, queue position and estimated wait, cancel, and once done its player,
download, share page, "Use these settings" and retry. A card's buttons come back here (`act`;
"Use these settings" fills the form: page/__init__.py). The job ids live in the visitor's
browser (BrowserState), so the list survives a reload.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

import backends
from dailies.app import assets
from dailies.app.errors import ApiError
from dailies.app.jobs import Accepted
from dailies.app.names import short_name
from dailies.app.page.clicks import CardClick
from dailies.app.page.run_here import run_here
from dailies.app.service import Service
from dailies.app.visitors import Visitor, of_page
from dailies.contract.spec import valid_id

MAX_TRACKED = 12


@dataclass(frozen=True)
class JobList:
    my_jobs: gr.BrowserState
    listing: gr.HTML


# Backend names as visitors read them, for the cards static/jobs.js draws.
NAMES = html.escape(json.dumps({name: short_name(name) for name in backends.BACKEND_CLASSES}))


def listing_html(jobs: list[str] | None) -> str:
    """The ids static/jobs.js follows (it draws the cards)."""
    ids = " ".join(j for j in jobs or [] if valid_id(j))
    empty = "" if ids else '<p class="dailies-empty">Your videos will appear here.</p>'
    return f'{empty}<ul class="dailies-jobs" data-ids="{ids}" data-names="{NAMES}"></ul>'


def act(
    service: Service, jobs: list[str] | None, visitor: Visitor, action: str, job_id: str
) -> tuple[str, list[str], Accepted | None]:
    """A card's button: cancel its job, or submit its recipe again (Retry, Again).
    (error line, tracked job ids, the job accepted again). The ids come from the browser, which
    may send any: whether the job is the visitor's own is checked by `Jobs`, from its record."""
    tracked = list(jobs or [])
    try:
        if action == "cancel":
            service.jobs.cancel(job_id, visitor)
        elif action == "retry":
            accepted = service.jobs.retry(job_id, visitor, from_page=True)
            return "", track(tracked, accepted.spec.id), accepted
    except ApiError as exc:
        return f"**{html.escape(exc.message)}**", tracked, None
    return "", tracked, None


def track(jobs: list[str] | None, job_id: str) -> list[str]:
    return ([job_id] + list(jobs or []))[:MAX_TRACKED]


def layout() -> JobList:
    """The cards' components; `wire` attaches their events once the page exists."""
    return JobList(
        my_jobs=gr.BrowserState([], storage_key="dailies-jobs"),
        listing=gr.HTML(
            listing_html([]), elem_id="jobs", head=assets.page_head(), js_on_load="dailies.jobs(element, trigger)"
        ),
    )


def wire(service: Service, demo: gr.Blocks, jobs: JobList, error: gr.Markdown) -> None:
    demo.load(listing_html, jobs.my_jobs, jobs.listing, api_visibility="private", queue=False)

    def clicked(
        ids: list[str],
        request: gr.Request,
        profile: gr.OAuthProfile | None,
        evt: CardClick,
        progress=gr.Progress(),  # noqa: B008 (Gradio's idiom)
    ) -> Iterator[dict[gr.components.Component, Any]]:
        visitor = of_page(request.request, profile and profile.username, service.settings)
        message, tracked, accepted = act(service, ids, visitor, evt.action, evt.id)
        yield {error: message, jobs.my_jobs: tracked, jobs.listing: listing_html(tracked)}
        for line in run_here(service, accepted, progress):  # ZeroGPU: a retried open-model job runs here
            yield {error: line or gr.skip()}

    jobs.listing.click(
        clicked,
        jobs.my_jobs,
        [error, jobs.my_jobs, jobs.listing],
        api_visibility="private",
        concurrency_limit=None,
        show_progress="hidden",
    )
