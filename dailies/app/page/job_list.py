"""The visitor's job list on the Generate tab, pushed: no timer, no polling.

Python renders only the ids to follow; the page's script (static/jobs.js) opens one
EventSource per unfinished job on GET /api/v1/jobs/{id}/events (fed by the app's one update
loop, dailies/app/updates.py) and draws each job from the status it is sent, the prompt as text.
When it sees a job succeed it asks once for its video (`show_video`). The job ids live in the
visitor's browser (BrowserState), so the list survives a reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from dailies.app.errors import ApiError
from dailies.app.jobs import JobStatus
from dailies.app.service import Service
from dailies.contract.spec import valid_id

MAX_TRACKED = 12
JOBS_JS = (Path(__file__).resolve().parents[3] / "static" / "jobs.js").read_text(encoding="utf-8")


@dataclass(frozen=True)
class JobList:
    my_jobs: gr.BrowserState
    shown: gr.State
    video: gr.Video
    used_seed: gr.Textbox
    listing: gr.HTML

    @property
    def video_outputs(self) -> list[gr.components.Component]:
        return [self.video, self.used_seed, self.shown]


def listing_html(jobs: list[str] | None) -> str:
    """The ids static/jobs.js follows (it draws the rows)."""
    ids = " ".join(j for j in jobs or [] if valid_id(j))
    return f'<ul class="dailies-jobs" data-ids="{ids}"></ul>'


def show_video(service: Service, job_id: str, current: str) -> tuple:
    """A job the page saw succeed: (video, seed, shown), unless a newer one is shown (ids sort by time)."""
    skip = (gr.skip(),) * 3
    if not valid_id(job_id) or job_id <= current:
        return skip
    try:
        result = service.jobs.status(job_id).result
    except ApiError:
        return skip
    row = service.index.get(result["generation_id"]) if result else None
    if row is None:
        return skip
    return str(service.dataset.root / row["video_path"]), str(result["seed"]), job_id


def statuses(service: Service, jobs: list[str] | None) -> list[JobStatus]:
    return list(service.jobs.statuses([j for j in jobs or [] if valid_id(j)]).values())


def cancel_newest(service: Service, jobs: list[str] | None) -> str:
    """Cancel the newest job still queued or running; the message for the error line."""
    for status in statuses(service, jobs):
        if status.active:
            try:
                service.jobs.cancel(status.id)
                return ""
            except ApiError:
                continue  # finished or expired meanwhile
    return "Nothing to cancel."


def track(jobs: list[str] | None, job_id: str) -> list[str]:
    return ([job_id] + list(jobs or []))[:MAX_TRACKED]


def layout() -> JobList:
    """The right-hand column's components; `wire` attaches their events once the page exists."""
    return JobList(
        my_jobs=gr.BrowserState([], storage_key="dailies-jobs"),
        shown=gr.State(""),  # the job whose video is in the player: only a newer one replaces it
        video=gr.Video(label="Latest video", elem_id="latest-video", autoplay=True, interactive=False),
        used_seed=gr.Textbox(label="Seed used", interactive=False, elem_id="used-seed"),
        listing=gr.HTML(listing_html([]), elem_id="jobs", js_on_load=JOBS_JS),
    )


def wire(service: Service, demo: gr.Blocks, jobs: JobList) -> None:
    demo.load(listing_html, jobs.my_jobs, jobs.listing, api_visibility="private", queue=False)

    def picked(current: str, evt: gr.EventData) -> tuple:
        return show_video(service, str((evt._data or {}).get("id", "")), current)

    jobs.listing.click(picked, jobs.shown, jobs.video_outputs, api_visibility="private", queue=False)
