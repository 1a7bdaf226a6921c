"""Programs can drive the page's events with gradio_client, through their api_names."""

from __future__ import annotations

from gradio_client import Client

from tests.conftest import App, wait_for


def test_submit_status_gallery_and_generation_through_gradio_client(app: App) -> None:
    client = Client(app.url + "/", verbose=False)
    # The form's fields, the tracked jobs, the backends to compare on (none) and a start image (none).
    form = ("preview", 1.0, 128, 128)
    error, jobs, *_ = client.predict("a heron in fog", "", *form, False, 21, [], [], None, api_name="/submit")
    assert error == "" and len(jobs) == 1
    job_id = jobs[0]
    status = wait_for(
        lambda: (s := client.predict(job_id, api_name="/job_status"))["status"] == "succeeded" and s,
        what="the job through gradio_client",
    )
    assert status["result"]["seed"] == 21 and status["result"]["num_frames"] == 12

    refused, jobs_after, *_ = client.predict("", "", *form, True, None, jobs, [], None, api_name="/submit")
    assert "prompt" in refused and jobs_after == jobs

    items = client.predict("heron", "", api_name="/gallery")
    assert [i["prompt"] for i in items] == ["a heron in fog"]
    video, prompt, recipe = client.predict(job_id, api_name="/generation")
    assert (prompt, recipe["seed"], recipe["id"]) == ("a heron in fog", 21, job_id) and video
    assert client.predict("0" * 24, api_name="/job_status")["error"]["code"] == "not_found"
