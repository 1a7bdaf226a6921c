"""`hf-inference`: Hugging Face Inference Providers through `huggingface_hub.InferenceClient`.

`text_to_video` blocks until the provider is done and exposes neither the remote id, progress
nor a cancel, so this backend cannot be split into submit and poll steps that survive a
restart. It runs in a helper thread while the worker watches the cancel flag: a cancel is
answered at once (the remote run finishes unobserved), and a killed worker fails the job
rather than paying for it twice. Give it its own worker processes (`--backends hf-inference`)
so it does not queue behind the polled backends.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import httpx as hf_httpx

from backends.base import CancelCheck, Cancelled, GenerationError, Param, Progress, Video
from backends.hosted_common import (
    HostedBackend,
    RetryLater,
    chosen_model,
    model_params,
    video_from_bytes,
)
from backends.hosted_env import HF_INFERENCE
from dailies.contract.retry import backoff
from dailies.contract.settings import Settings
from dailies.contract.spec import JobSpec

PROVIDERS = ("auto", "fal-ai", "replicate", "novita", "together", "wavespeed")
KNOWN = (
    "Wan-AI/Wan2.2-T2V-A14B",
    "Lightricks/LTX-Video",
    "tencent/HunyuanVideo",
    "genmo/mochi-1-preview",
    "zai-org/CogVideoX-5b",
)
WATCH_S = 0.5  # how often the worker looks at the cancel flag while the provider works


class HfInferenceBackend(HostedBackend):
    name = "hf-inference"
    display_name = "Hugging Face Inference Providers"
    description = (
        "Runs the prompt on a model served by an Inference Provider, billed to the Space's token. "
        "The providers report no progress while they work."
    )
    provider = "the Inference Provider"
    key_env = HF_INFERENCE.key
    credential = "token"
    negative_prompt = True
    params = (
        Param("provider", str, "auto", choices=PROVIDERS, label="Provider"),
        *model_params(KNOWN, example="owner/name of a Hub model, e.g. Lightricks/LTX-Video"),
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hf-inference")

    def generate(self, request: JobSpec, progress: Progress, cancelled: CancelCheck) -> Video:
        model = chosen_model(request.params)
        client = InferenceClient(
            provider=request.params["provider"], api_key=self.key, bill_to=self.settings.hf_bill_to
        )
        attempt = 0
        while True:
            attempt += 1
            future = self._pool.submit(self._call, client, request, model)
            try:
                data = self._watch(future, progress, cancelled)
            except RetryLater as exc:
                if attempt > self.settings.hosted_retries:
                    raise GenerationError(f"{exc.reason}; gave up after {attempt} tries") from None
                self._pause(exc.after_s if exc.after_s is not None else backoff(attempt), progress, cancelled, exc)
                continue
            return video_from_bytes(data, model, self.settings.hosted_max_bytes, provider=request.params["provider"])

    def _call(self, client: InferenceClient, request: JobSpec, model: str) -> bytes:
        try:
            return client.text_to_video(
                request.prompt,
                model=model,
                negative_prompt=[request.negative_prompt] if request.negative_prompt else None,
                num_frames=request.num_frames,
                seed=request.seed,
            )
        except HfHubHTTPError as exc:
            refused = self.refusal(exc.response) if exc.response is not None else None
            raise refused or GenerationError(f"the Inference Provider refused the job: {exc}") from None
        except hf_httpx.ConnectError:
            raise RetryLater("could not reach the Inference Provider") from None
        except (KeyError, TypeError, IndexError):
            # huggingface_hub reads the provider's result without checking it: a refusal lands here.
            raise GenerationError(
                "the Inference Provider returned no video (a refused prompt looks like this; "
                "huggingface_hub does not pass the provider's reason on)"
            ) from None
        except (hf_httpx.TransportError, TimeoutError, ValueError) as exc:
            # Not retried: the job may be running (and billed) at the provider already.
            raise GenerationError(f"the Inference Provider call failed: {str(exc)[:300]}") from None

    def _watch(self, future: Future, progress: Progress, cancelled: CancelCheck) -> bytes:
        started = time.monotonic()
        while True:
            try:
                return future.result(timeout=WATCH_S)
            except FutureTimeout:
                if cancelled():
                    raise Cancelled() from None
                progress(0.0, f"waiting for the provider ({time.monotonic() - started:.0f} s)")

    def _pause(self, seconds: float, progress: Progress, cancelled: CancelCheck, why: RetryLater) -> None:
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            if cancelled():
                raise Cancelled()
            progress(0.0, f"{why.reason}; trying again in {left:.0f} s")
            time.sleep(min(WATCH_S, left))
