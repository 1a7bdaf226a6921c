"""The visitor's job list on the Generate tab: a timer polls their jobs and shows the latest video.

The job ids live in the visitor's browser (BrowserState), so the list survives a reload.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from dailies.app.errors import ApiError
from dailies.app.jobs import JobStatus
from dailies.app.service import Service

MAX_TRACKED = 12
TICK_S = 0.5


@dataclass(frozen=True)
class JobList:
    my_jobs: gr.BrowserState
    shown: gr.State
    video: gr.Video
    used_seed: gr.Textbox
    listing: gr.HTML
    timer: gr.Timer

    @property
    def tick_outputs(self) -> list[gr.components.Component]:
        return [self.listing, self.video, self.used_seed, self.shown, self.timer]


def job_html(job: JobStatus) -> str:
    state = job.status
    if state == "queued":
        detail = f"queued, {job.position} ahead" if job.position else "queued, next to run"
    elif state == "running":
        eta = f", about {job.eta_s:.0f} s left" if job.eta_s is not None else ""
        detail = f"running {job.progress * 100:.0f}%, {job.elapsed_s:.1f} s{eta}"
    elif state == "succeeded" and job.result:
        detail = f"done in {job.elapsed_s:.1f} s, seed {job.result['seed']}"
    elif state == "failed":
        detail = f"failed: {job.error}"
    else:
        detail = state
    return (
        f'<li class="dailies-job" data-status="{state}" data-id="{job.id}">'
        f'<progress max="1" value="{job.progress:.3f}"></progress> '
        f'<span class="dailies-job-status">{html.escape(detail)}</span> '
        f'<span class="dailies-job-prompt">{html.escape(job.request["prompt"][:120])}</span></li>'
    )


def statuses(service: Service, jobs: list[str] | None) -> list[JobStatus]:
    found = []
    for job_id in jobs or []:
        try:
            found.append(service.jobs.status(job_id))
        except ApiError:
            continue  # expired
    return found


def tick(service: Service, jobs: list[str] | None, current: str) -> tuple:
    """The list, and the newest finished video unless it is already shown; the timer stops when idle."""
    found = statuses(service, jobs)
    timer = gr.Timer(active=any(s.active for s in found))
    listing = "<ul class='dailies-jobs'>" + "".join(map(job_html, found)) + "</ul>" if found else ""
    done = next((s.result for s in found if s.result), None)
    if done is None or done["generation_id"] == current:
        return listing, gr.skip(), gr.skip(), current, timer
    generation_id = done["generation_id"]
    row = service.index.get(generation_id)
    path = str(service.dataset.root / row["video_path"]) if row else None
    return listing, path, str(done["seed"]), generation_id, timer


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
        shown=gr.State(""),  # generation id in the player, so ticks only send a new video once
        video=gr.Video(label="Latest video", elem_id="latest-video", autoplay=True, interactive=False),
        used_seed=gr.Textbox(label="Seed used", interactive=False, elem_id="used-seed"),
        listing=gr.HTML("", elem_id="jobs"),
        timer=gr.Timer(TICK_S, active=True),
    )


def wire(service: Service, demo: gr.Blocks, jobs: JobList) -> None:
    for event in (jobs.timer.tick, demo.load):
        event(
            lambda ids, current: tick(service, ids, current),
            [jobs.my_jobs, jobs.shown],
            jobs.tick_outputs,
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
