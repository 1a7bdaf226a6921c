"""`fal`: fal's queue API over httpx (submit, status with queue position and logs, result, cancel)."""

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
from backends.hosted_env import FAL
from dailies.contract.spec import JobSpec

KNOWN = ("fal-ai/wan-t2v", "fal-ai/ltx-video", "fal-ai/mochi-v1", "fal-ai/cogvideox-5b", "fal-ai/hunyuan-video")
APP_ID = r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95}){1,3}"


class FalBackend(PolledBackend):
    name = "fal"
    display_name = "fal (hosted)"
    description = (
        "Runs the prompt on a fal app through fal's queue; its queue position and logs show here. "
        "Size and length are the app's own defaults."
    )
    provider = "fal"
    key_env, url_env = FAL
    default_url = "https://queue.fal.run"
    negative_prompt = True
    poll_every = 2.0
    params = model_params(KNOWN, APP_ID, "owner/app or owner/app/path, e.g. fal-ai/wan-t2v")

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.key}"}

    def submit(self, request: JobSpec) -> dict[str, Any]:
        app = chosen_model(request.params)
        payload = prompt_input(request)
        body = self.call("POST", f"{self.base_url}/{app}", create=True, json=payload).json()
        request_id = str(body.get("request_id", ""))
        if not REMOTE_ID.fullmatch(request_id):
            raise GenerationError("fal answered without a usable request id")
        return {"id": request_id, "app": app}

    def _url(self, state: dict[str, Any], tail: str = "") -> str:
        # Built from our base, never from URLs in fal's answer: the key goes to fal's host only.
        owner_app = "/".join(state["app"].split("/")[:2])
        return f"{self.base_url}/{owner_app}/requests/{state['id']}{tail}"

    def poll(self, state: dict[str, Any]) -> Pending | Video:
        body = self.call("GET", self._url(state, "/status"), params={"logs": 1}).json()
        status = body.get("status")
        if status == "IN_QUEUE":
            position = body.get("queue_position")
            position = position if isinstance(position, int) else None
            where = f" (position {position})" if position is not None else ""
            return Pending(self.poll_every, 0.0, position, f"waiting in fal's queue{where}")
        if status == "IN_PROGRESS":
            lines = [str(entry.get("message", "")) for entry in body.get("logs") or [] if isinstance(entry, dict)]
            return self.running("\n".join(lines))
        if status == "COMPLETED":
            if body.get("error"):
                raise GenerationError(f"fal could not make the video: {reason_in(body['error'])}")
            result = self.call("GET", self._url(state)).json()
            video = result.get("video") if isinstance(result, dict) else None
            url = video.get("url") if isinstance(video, dict) else None
            if not isinstance(url, str):
                raise GenerationError("fal's result has no video")
            return self.fetch_video(url, state["app"], remote_id=state["id"])
        raise GenerationError(f"fal answered an unknown status {str(status)[:40]!r}")

    def cancel(self, state: dict[str, Any]) -> None:
        self.call_quietly("PUT", self._url(state, "/cancel"))
