"""`replicate`: Replicate's predictions API over httpx (create, get, cancel; progress from logs).

Replicate deletes outputs after an hour, so a finished video is downloaded on the poll that
sees it succeed.
"""

from __future__ import annotations

from typing import Any

from backends.base import GenerationError, Video
from backends.hosted_common import (
    REMOTE_ID,
    Pending,
    PolledBackend,
    chosen_model,
    model_params,
    prompt_input,
    reason_in,
)
from backends.hosted_env import REPLICATE
from dailies.contract.spec import JobSpec

# Community and official video models (owner/name); any other owner/name is allowed too.
KNOWN = (
    "lightricks/ltx-video",
    "zsxkib/pyramid-flow",
    "cuuupid/cogvideox-5b",
    "genmoai/mochi-1",
    "wan-video/wan-2.1-t2v-480p",
)


class ReplicateBackend(PolledBackend):
    name = "replicate"
    display_name = "Replicate (hosted)"
    description = (
        "Runs the prompt on a Replicate model; progress comes from the model's own log. "
        "Size and length are the model's own defaults."
    )
    provider = "Replicate"
    key_env, url_env = REPLICATE
    default_url = "https://api.replicate.com/v1"
    negative_prompt = True
    poll_every = 2.0
    params = model_params(KNOWN, example="owner/name, e.g. lightricks/ltx-video")

    def submit(self, request: JobSpec) -> dict[str, Any]:
        model = chosen_model(request.params)
        payload = prompt_input(request)
        body = self.call(
            "POST", f"{self.base_url}/models/{model}/predictions", create=True, json={"input": payload}
        ).json()
        prediction_id = str(body.get("id", ""))
        if not REMOTE_ID.fullmatch(prediction_id):
            raise GenerationError("Replicate answered without a usable prediction id")
        return {"id": prediction_id, "model": model}

    def poll(self, state: dict[str, Any]) -> Pending | Video:
        body = self.call("GET", f"{self.base_url}/predictions/{state['id']}").json()
        status = body.get("status")
        if status == "starting":
            return Pending(self.poll_every, 0.0, message="starting at Replicate (the model may be booting)")
        if status == "processing":
            return self.running(str(body.get("logs") or ""))
        if status == "succeeded":
            output = body.get("output")
            url = output[0] if isinstance(output, list) and output else output
            if not isinstance(url, str):
                raise GenerationError("Replicate's prediction has no video output")
            return self.fetch_video(url, state["model"], remote_id=state["id"])
        if status in ("failed", "canceled"):
            raise GenerationError(f"Replicate's prediction {status}: {reason_in(body.get('error')) or 'no reason'}")
        raise GenerationError(f"Replicate answered an unknown status {str(status)[:40]!r}")

    def cancel(self, state: dict[str, Any]) -> None:
        self.call_quietly("POST", f"{self.base_url}/predictions/{state['id']}/cancel")
