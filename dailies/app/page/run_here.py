"""Driving a job that runs in the visitor's own request (ZeroGPU; dailies/app/zerogpu.py says why).

Every event that submits a job (Generate, a card's Retry or Again) is a generator: it answers
first, then passes what it accepted to `run_here`. Off ZeroGPU, or for a job on the queue, that
yields nothing; on ZeroGPU it runs the job on a lent GPU, reporting each step to Gradio's progress
and yielding, so that Gradio closes it, and with it the GPU task, when the visitor leaves.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import closing

import gradio as gr

from dailies.app import zerogpu
from dailies.app.jobs import Accepted
from dailies.app.service import Service


def run_here(service: Service, accepted: Accepted | None, progress: gr.Progress) -> Iterator[str]:
    """ "" after each step of a job that runs in this request, or the platform's refusal as an error line."""
    if accepted is None or not accepted.in_request:
        return
    try:
        with closing(zerogpu.run(service.redis, service.settings, accepted.spec)) as steps:
            for fraction, message in steps:
                progress(fraction, desc=message)
                yield ""
    except zerogpu.Refused as exc:
        yield f"**ZeroGPU:** {html.escape(str(exc))}"
