"""The Generate tab on a ZeroGPU Space: the GPU time a job will ask for, and a Generate event
that runs an open model in the visitor's own request (dailies/app/zerogpu.py says why).

The event is a generator: it answers like the ordinary submit first (the job appears in the
list), then runs the job on a lent GPU, reporting each step to Gradio's progress and yielding,
so that Gradio closes it, and with it the GPU task, when the visitor leaves.
"""

from __future__ import annotations

import html
from contextlib import closing
from typing import Any

import gradio as gr

import backends
from dailies.app import zerogpu
from dailies.app.api import client_id
from dailies.app.errors import ApiError
from dailies.app.page import generate, job_list
from dailies.app.service import Service
from dailies.app.validation import validate


def estimate(service: Service, body: dict[str, Any]) -> str:
    """Before Generate: the GPU time an open-model job will ask for (empty for other backends)."""
    chosen = backends.get(body["backend"], service.settings)
    if not zerogpu.runs_in_request(chosen):
        return ""
    try:
        return zerogpu.estimate_note(validate(body, chosen), chosen)
    except ApiError:
        return ""  # not a valid job yet; Generate will say why


def wire(service: Service, demo: gr.Blocks, form: generate.Form, jobs: job_list.JobList) -> None:
    settings = service.settings

    def submit_and_run(
        text: str,
        negative: str,
        name: str,
        seconds: float,
        w: float,
        h: float,
        random_seed: bool,
        seed: float | None,
        params: dict,
        tracked: list,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 (Gradio's idiom)
    ):
        body = generate.request_body(text, negative, name, seconds, w, h, random_seed, seed, params)
        answer = generate.submit(service, client_id(request.request, settings.trust_forwarded), body, tracked)
        yield answer
        error, tracked_now, _ = answer
        spec = None if error else service.jobs.take_in_request(tracked_now[0])  # the new job comes first
        if spec is None:
            return  # refused, or a backend that keeps the queue
        try:
            with closing(zerogpu.run(service.redis, settings, spec)) as steps:
                for fraction, message in steps:
                    progress(fraction, desc=message)
                    yield gr.skip(), gr.skip(), gr.skip()
        except zerogpu.Refused as exc:
            yield f"**ZeroGPU:** {html.escape(str(exc))}", gr.skip(), gr.skip()

    # Queued (a generator), but not one at a time: the per-visitor limit and the ZeroGPU
    # scheduler bound it, and a preview or hosted submit must not wait behind a GPU job.
    form.submit.click(
        submit_and_run,
        [*form.as_body, jobs.my_jobs],
        form.submitted(jobs),
        api_name="submit",
        concurrency_limit=None,
    )
    gr.on(
        [form.backend.change, form.duration.release, form.width.release, form.height.release, form.params.change],
        lambda *values: estimate(service, generate.request_body(*values)),
        form.as_body,
        form.gpu_estimate,
        api_visibility="private",
        queue=False,
    )
    demo.load(
        lambda *values: estimate(service, generate.request_body(*values)),
        form.as_body,
        form.gpu_estimate,
        api_visibility="private",
        queue=False,
    )
