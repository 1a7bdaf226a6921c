"""The visitor's jobs on the Generate tab, as cards: each with its own progress, queue position
and estimated wait, cancel, and once done its player, download, share page and retry; the time
waited and the time rendered are shown apart.

The job ids live in the visitor's browser (BrowserState), so the list survives a reload. Jobs
still waiting or running and finished jobs are drawn apart: a tick redraws the first (progress
moves) and the second only when a job finishes, so a finished card's player is not restarted.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr

from dailies.app import share
from dailies.app.api import client_id
from dailies.app.errors import ApiError
from dailies.app.jobs import JobStatus
from dailies.app.service import Service

MAX_TRACKED = 12
TICK_S = 0.5
# A card's buttons send their action and job id to Python (gr.HTML js_on_load).
ACTIONS_JS = """element.addEventListener("click", (e) => {
  const button = e.target instanceof Element && e.target.closest("[data-action]");
  if (button) trigger("click", { action: button.dataset.action, id: button.dataset.id });
});"""


@dataclass(frozen=True)
class JobList:
    my_jobs: gr.BrowserState
    drawn: gr.State  # the finished cards as drawn, so a tick redraws them only on a change
    active: gr.HTML
    finished: gr.HTML
    timer: gr.Timer

    @property
    def tick_outputs(self) -> list[gr.components.Component]:
        return [self.active, self.finished, self.drawn, self.timer]


def _detail(job: JobStatus, stored: dict | None) -> str:
    state = job.status
    if state == "queued":
        return f"waiting, {job.position} ahead" if job.position else "waiting, next to run"
    if state == "running":
        eta = f", about {job.eta_s:.0f} s left" if job.eta_s is not None else ""
        return f"rendering {job.progress * 100:.0f}%, {job.elapsed_s:.1f} s{eta}"
    if state == "succeeded" and stored:
        seed = "" if stored.get("seed") is None else f" · seed {stored['seed']}"
        return share.timing(stored) + seed
    if state == "failed":
        return f"failed: {job.error}"
    return state


def _button(action: str, job_id: str, label: str) -> str:
    return (
        f'<button type="button" class="dailies-job-{action}" data-action="{action}" data-id="{job_id}">{label}</button>'
    )


def job_html(job: JobStatus, stored: dict | None = None) -> str:
    """One card; `stored` is the finished job's generation (its player, download and timings)."""
    state = job.status
    parts = [
        f'<div class="dailies-job-top"><strong>{html.escape(share.display_name(job.backend))}</strong> '
        f'<span class="dailies-job-status">{html.escape(_detail(job, stored))}</span></div>'
    ]
    actions = []
    if job.active:
        parts.append(f'<progress max="1" value="{job.progress:.3f}"></progress>')
        actions.append(_button("cancel", job.id, "Cancel"))
    elif stored:
        parts.append(
            f'<video class="dailies-job-video" controls muted loop playsinline preload="metadata" '
            f'poster="{html.escape(stored["poster_url"])}" src="{html.escape(stored["video_url"])}" '
            f'width="{stored["width"]}" height="{stored["height"]}"></video>'
        )
        actions += [
            f'<a href="{html.escape(stored["video_url"])}" download="dailies-{job.id}.mp4">Download</a>',
            f'<a href="/g/{job.id}" target="_blank" rel="noopener">Share</a>',
        ]
    if not job.active:
        actions.append(_button("retry", job.id, "Retry" if state != "succeeded" else "Again"))
    parts.append(f'<span class="dailies-job-prompt">{html.escape(job.request["prompt"][:200])}</span>')
    parts.append(f'<div class="dailies-job-actions">{" ".join(actions)}</div>')
    return f'<li class="dailies-job" data-status="{state}" data-id="{job.id}">{"".join(parts)}</li>'


def statuses(service: Service, jobs: list[str] | None) -> list[JobStatus]:
    found = []
    for job_id in jobs or []:
        try:
            found.append(service.jobs.status(job_id))
        except ApiError:
            continue  # expired
    return found


def _cards(items: list[str]) -> str:
    return f"<ul class='dailies-jobs'>{''.join(items)}</ul>" if items else ""


def tick(service: Service, jobs: list[str] | None, drawn: str) -> tuple:
    """The waiting and running cards, the finished ones when they changed; the timer stops when idle."""
    found = statuses(service, jobs)
    active = _cards([job_html(s) for s in found if s.active])
    finished = _cards(
        [job_html(s, service.stored_generation(s.id) if s.result else None) for s in found if not s.active]
    )
    timer = gr.Timer(active=any(s.active for s in found))
    if not found:
        active = '<p class="dailies-empty">Your videos will appear here.</p>'
    return active, (gr.skip() if finished == drawn else finished), finished, timer


def act(service: Service, jobs: list[str] | None, client: str, action: str, job_id: str) -> tuple[str, list[str]]:
    """A card's button: cancel it, or submit its recipe again. (error line, tracked job ids)"""
    if job_id not in (jobs or []):
        return "", jobs or []
    try:
        if action == "cancel":
            service.jobs.cancel(job_id)
            return "", jobs or []
        if action == "retry":
            request = service.jobs.status(job_id).request
            body = {k: v for k, v in request.items() if k not in ("id", "params", "group") and v not in (None, "")}
            answer = service.jobs.submit({**body, **request["params"]}, client)
            return "", track(jobs, answer["id"])
    except ApiError as exc:
        return f"**{html.escape(exc.message)}**", jobs or []
    return "", jobs or []


def track(jobs: list[str] | None, job_id: str) -> list[str]:
    return ([job_id] + list(jobs or []))[:MAX_TRACKED]


def layout() -> JobList:
    """The cards' components; `wire` attaches their events once the page exists."""
    with gr.Column(elem_id="jobs"):
        active = gr.HTML("", elem_id="jobs-active", js_on_load=ACTIONS_JS)
        finished = gr.HTML("", elem_id="jobs-finished", js_on_load=ACTIONS_JS)
    return JobList(
        my_jobs=gr.BrowserState([], storage_key="dailies-jobs"),
        drawn=gr.State(""),
        active=active,
        finished=finished,
        timer=gr.Timer(TICK_S, active=True),
    )


def wire(service: Service, demo: gr.Blocks, jobs: JobList, error: gr.Markdown) -> None:
    for event in (jobs.timer.tick, demo.load):
        event(
            lambda ids, drawn: tick(service, ids, drawn),
            [jobs.my_jobs, jobs.drawn],
            jobs.tick_outputs,
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )

    def on_click(ids: list[str], request: gr.Request, evt: gr.EventData) -> tuple:
        data = evt._data or {}
        client = client_id(request.request, service.settings.trust_forwarded)
        message, tracked = act(service, ids, client, str(data.get("action", "")), str(data.get("id", "")))
        return (message, tracked, *tick(service, tracked, ""))

    for area in (jobs.active, jobs.finished):
        area.click(
            on_click,
            jobs.my_jobs,
            [error, jobs.my_jobs, *jobs.tick_outputs],
            api_visibility="private",
            queue=False,
        )
