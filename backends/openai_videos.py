"""`openai-videos`: the OpenAI Videos API contract (create, poll, content, delete) over httpx.

OpenAI retired its own endpoint; compatible gateways and self-hosted servers keep the contract,
so the base URL is a setting (`OPENAI_VIDEOS_BASE_URL`, e.g. `https://gateway.example/v1`).
The contract has no seed.
"""

from __future__ import annotations

import re
from typing import Any

from backends.base import SAME_WEIGHTS, FrameRule, GenerationError, Param, SizeRule, Video
from backends.hosted_common import PatternParam, Pending, PolledBackend, reason_in
from backends.hosted_env import OPENAI_VIDEOS
from dailies.contract.spec import JobSpec

SIZES = ("1280x720", "720x1280", "1792x1024", "1024x1792")
VIDEO_ID = re.compile(r"[\w-][\w.-]{0,199}")  # not starting with a dot: ".." must not reach a URL


class OpenAIVideosBackend(PolledBackend):
    name = "openai-videos"
    display_name = "OpenAI Videos API (compatible endpoint)"
    description = (
        "Sends the prompt to an endpoint that speaks the OpenAI Videos API. Length and size come "
        "from its own seconds and size settings; it takes no seed."
    )
    provider = "the OpenAI Videos endpoint"
    key_env, url_env = OPENAI_VIDEOS
    seeded = False
    checkpoints = (
        PolledBackend.checkpoints[0].but(
            "any",
            frames=FrameRule(step=1, offset=0, minimum=96, maximum=288, default=96),
            size=SizeRule(multiple=16, minimum=720, maximum=1792, default=(1280, 720)),
            i2v=SAME_WEIGHTS,
        ),
    )
    poll_every = 5.0
    params = (
        PatternParam("model", str, "sora-2", label="Model", help="a model name, e.g. sora-2", pattern=r"[\w.:-]{1,64}"),
        Param("seconds", int, 4, choices=(4, 8, 12), label="Seconds"),
        Param("size", str, SIZES[0], choices=SIZES, label="Size"),
    )

    def submit(self, request: JobSpec) -> dict[str, Any]:
        fields = {
            "prompt": request.prompt,
            "model": request.params["model"],
            "seconds": str(request.params["seconds"]),
            "size": request.params["size"],
        }
        # The contract is multipart (it may carry an image), so every field goes as a form part.
        parts: list[tuple[str, Any]] = [(k, (None, v)) for k, v in fields.items()]
        if request.image:
            parts.append(("input_reference", ("reference", request.image, "application/octet-stream")))
        body = self.call("POST", f"{self.base_url}/videos", create=True, files=parts).json()
        remote_id = str(body.get("id", ""))
        if not VIDEO_ID.fullmatch(remote_id):
            raise GenerationError("the endpoint answered without a usable video id")
        return {"id": remote_id, "model": fields["model"]}

    def poll(self, state: dict[str, Any]) -> Pending | Video:
        url = f"{self.base_url}/videos/{state['id']}"
        response = self.call("GET", url)
        body = response.json()
        status = body.get("status")
        after = float(response.headers.get("openai-poll-after-ms") or 0) / 1000 or self.poll_every
        if status in ("queued", "in_progress"):
            progress = body.get("progress")
            fraction = float(progress) / 100 if isinstance(progress, (int, float)) else None
            return Pending(after, fraction, message=f"{status.replace('_', ' ')} at the endpoint")
        if status == "completed":
            video = self.fetch_video(
                f"{url}/content?variant=video", body.get("model") or state["model"], trusted=True, remote_id=state["id"]
            )
            self.cancel(state)  # the video is ours now: free the endpoint's copy
            return video
        if status == "failed":
            reason = reason_in(body.get("error")) or "no reason given"
            raise GenerationError(f"the endpoint could not make the video: {reason}")
        raise GenerationError(f"the endpoint answered an unknown status {str(status)[:40]!r}")

    def cancel(self, state: dict[str, Any]) -> None:
        self.call_quietly("DELETE", f"{self.base_url}/videos/{state['id']}")
