"""The page on a ZeroGPU Space: the GPU time a job will ask for (the events that submit jobs
drive the ones that run here through page/run_here.py)."""

from __future__ import annotations

from typing import Any

import gradio as gr

import backends
from dailies.app import zerogpu
from dailies.app.errors import ApiError
from dailies.app.page import generate
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


def wire(service: Service, demo: gr.Blocks, form: generate.Form) -> None:
    """The GPU time estimate under the form, kept up to date as the visitor changes it."""
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
