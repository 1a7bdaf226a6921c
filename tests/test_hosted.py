"""Hosted backends through the real app, a real hosted worker process and loopback provider servers."""

from __future__ import annotations

import base64
import io
import secrets
import signal
import subprocess
import sys
import zlib
from collections.abc import Iterator

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from redis import Redis

from backends import BACKEND_CLASSES
from dailies.contract.media import probe_mp4
from dailies.contract.settings import Settings
from tests.conftest import ROOT, App, Processes, base_env, start_app, wait_for
from tests.harness import png
from tests.hosted_servers import KEYS, HostedServer, worker_env

pytestmark = pytest.mark.hosted

HOSTED = "hf-inference,openai-videos,fal,replicate"
BACKEND = {"hf": "hf-inference", "openai": "openai-videos", "fal": "fal", "replicate": "replicate"}
CREATE = {  # the request that starts a remote job, per provider
    "hf": r"^/hfrouter/fal-ai/fal-ai/ltx-video$",
    "openai": r"^/openai/v1/videos$",
    "fal": r"^/fal/fal-ai/[^/]+$",
    "replicate": r"^/replicate/v1/models/.+/predictions$",
}
STATUS = {
    "hf": r"^/hfrouter/fal-ai/.+/status$",
    "openai": r"^/openai/v1/videos/\w+$",
    "fal": r"/requests/\w+/status$",
    "replicate": r"^/replicate/v1/predictions/\w+$",
}
CANCEL = {
    "openai": ("DELETE", r"^/openai/v1/videos/\w+$"),
    "fal": ("PUT", r"/requests/\w+/cancel$"),
    "replicate": ("POST", r"/predictions/\w+/cancel$"),
}


@pytest.fixture(scope="module")
def module_server() -> Iterator[HostedServer]:
    with HostedServer() as running:
        yield running


@pytest.fixture
def server(module_server: HostedServer) -> HostedServer:
    """The module's provider server, its script and records fresh for each test."""
    module_server.reset()
    return module_server


def hosted_worker(processes: Processes, redis_url: str, server: HostedServer, **env: str):
    return processes.worker(redis_url, HOSTED, **worker_env(server, PYTHONPATH=str(ROOT / "tests" / "hf_route"), **env))


@pytest.fixture(scope="module")
def module_app(module_processes: Processes, module_redis: str, module_server: HostedServer) -> App:
    """One app and hosted worker for the tests that look only at their own jobs: starting them is
    most of what such a test costs. Its own Redis: other tests here empty the session's."""
    hosted_worker(module_processes, module_redis, module_server)
    return start_app(
        module_processes,
        module_processes.tmp_path,
        module_redis,
        DAILIES_USER_MAX_ACTIVE="100",
        DAILIES_USER_MAX_PER_HOUR="1000",
    )


@pytest.fixture
def app(module_app: App, server: HostedServer) -> App:
    return module_app


def submit(app: App, provider: str, **extra) -> str:
    answer = app.submit(prompt="a heron lands on a jetty at dawn", backend=BACKEND[provider], **extra)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def status(app: App, job_id: str) -> dict:
    return app.client.get(f"/api/v1/jobs/{job_id}").json()


@pytest.mark.parametrize("provider", ["hf", "openai", "fal", "replicate"])
def test_happy_path(app: App, server: HostedServer, provider: str) -> None:
    job_id = submit(app, provider)
    done = app.wait_done(job_id, timeout=60)
    assert done["status"] == "succeeded", done
    video = app.client.get(done["result"]["video_url"]).content
    info = probe_mp4(video)
    assert (info.codec, info.width, info.height, info.num_frames) == ("h264", 96, 64, 8)
    assert video == server.mp4 and app.client.get(done["result"]["poster_url"]).content[:2] == b"\xff\xd8"
    assert server.count("POST", CREATE[provider]) == 1
    generation = app.client.get(f"/api/v1/generations/{job_id}").json()
    assert generation["backend"] == BACKEND[provider] and generation["prompt"].startswith("a heron")


def test_openai_sends_seconds_and_size_and_takes_no_seed(app: App, server: HostedServer) -> None:
    refused = app.submit(prompt="x", backend="openai-videos", seed=3)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "seed"
    job_id = submit(app, "openai", seconds=8, size="720x1280")
    assert app.wait_done(job_id, timeout=60)["status"] == "succeeded"
    assert server.bodies[-1] == {
        "prompt": "a heron lands on a jetty at dawn",
        "model": "sora-2",
        "seconds": "8",
        "size": "720x1280",
    }
    assert server.count("DELETE", r"^/openai/v1/videos/\w+$") == 1  # the endpoint's copy is freed


def test_openai_image_to_video_sends_the_reference(app: App, server: HostedServer) -> None:
    picture = png((200, 30, 30))  # passed on as sent
    job_id = submit(app, "openai", image=picture)
    assert app.wait_done(job_id, timeout=60)["status"] == "succeeded"
    assert server.bodies[-1]["input_reference"] == base64.b64decode(picture)


def test_fal_retry_after_is_honoured_and_shown(app: App, server: HostedServer) -> None:
    server.script.poll_errors, server.script.retry_after = [429], "6"
    job_id = submit(app, "fal")
    waiting = wait_for(lambda: "trying again" in (s := status(app, job_id))["message"] and s, timeout=30, what="retry")
    assert waiting["message"] == "fal answered HTTP 429; trying again in 6 s" and waiting["status"] == "running"
    assert app.wait_done(job_id, timeout=60)["status"] == "succeeded"


def test_fal_queue_position_and_progress_show_in_job_status(app: App, server: HostedServer) -> None:
    server.script.polls = 4
    job_id = submit(app, "fal", model="fal-ai/ltx-video")
    queued = wait_for(lambda: (s := status(app, job_id))["position"] == 3 and s, timeout=30, what="fal's position")
    assert queued["status"] == "running" and "position 3" in queued["message"]
    running = wait_for(lambda: (s := status(app, job_id))["progress"] == 0.5 and s, timeout=30, what="log progress")
    assert running["position"] is None and "4/8" in running["message"]
    assert app.wait_done(job_id, timeout=60)["status"] == "succeeded"


def test_replicate_custom_model_and_log_progress(app: App, server: HostedServer) -> None:
    bad = app.submit(prompt="x", backend="replicate", custom_model="not a model")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "custom_model"
    server.script.polls = 3
    job_id = submit(app, "replicate", custom_model="someone/video-model")
    wait_for(lambda: status(app, job_id)["progress"] == 0.62, timeout=30, what="progress from the logs")
    assert app.wait_done(job_id, timeout=60)["status"] == "succeeded"
    assert server.count("POST", r"^/replicate/v1/models/someone/video-model/predictions$") == 1
    assert server.bodies[-1]["input"]["prompt"].startswith("a heron")


@pytest.mark.parametrize("provider", ["hf", "openai", "fal", "replicate"])
def test_retry_429_and_5xx_honours_retry_after(app: App, server: HostedServer, provider: str) -> None:
    server.script.create_errors = [429]
    server.script.poll_errors = [503, 500] if provider != "hf" else []
    job_id = submit(app, provider)
    done = app.wait_done(job_id, timeout=60)
    assert done["status"] == "succeeded", done
    assert server.count("POST", CREATE[provider]) == 2 and len(server.remotes) == 1  # one refused, one job


@pytest.mark.parametrize("provider", ["hf", "openai", "fal", "replicate"])
def test_content_policy_refusal_is_final_with_the_providers_reason(app: App, server: HostedServer, provider: str):
    server.script.outcome = "policy"
    job_id = submit(app, provider)
    done = app.wait_done(job_id, timeout=60)
    reason = {
        "hf": "a refused prompt",
        "openai": "blocked by our moderation",
        "fal": "flagged by a content checker",
        "replicate": "NSFW",
    }
    assert done["status"] == "failed" and reason[provider] in done["error"], done
    assert server.count("POST", CREATE[provider]) == 1
    assert app.client.get(f"/api/v1/generations/{job_id}").status_code == 404  # nothing stored


def test_replicate_failed_status_is_shown(app: App, server: HostedServer) -> None:
    server.script.outcome = "failed"
    done = app.wait_done(submit(app, "replicate"), timeout=60)
    assert done["status"] == "failed" and "CUDA out of memory" in done["error"]


def test_fal_stuck_queue_times_out_and_cancels_remotely(processes, tmp_path, redis_url, server) -> None:
    hosted_worker(processes, redis_url, server, DAILIES_JOB_TIMEOUT="5")
    app = start_app(processes, tmp_path, redis_url)
    server.script.outcome = "stuck"
    done = app.wait_done(submit(app, "fal"), timeout=60)
    assert done["status"] == "failed" and "did not finish within 5 s" in done["error"]
    assert server.count("PUT", CANCEL["fal"][1]) == 1


@pytest.mark.parametrize(
    "kind, error",
    [("truncated", "cut off"), ("oversized", "over the 1 MB limit"), ("garbage", "not a playable video")],
)
def test_replicate_bad_download_is_refused(processes, tmp_path, redis_url, server, kind: str, error: str) -> None:
    hosted_worker(processes, redis_url, server, DAILIES_HOSTED_RETRIES="1", DAILIES_HOSTED_MAX_MB="1")
    app = start_app(processes, tmp_path, redis_url)
    server.script.video = kind
    done = app.wait_done(submit(app, "replicate"), timeout=60)
    assert done["status"] == "failed" and error in done["error"], done
    assert app.client.get("/api/v1/generations").json()["items"] == []


def test_fal_plain_http_video_address_is_refused(processes, tmp_path, redis_url, server) -> None:
    hosted_worker(processes, redis_url, server, DAILIES_HOSTED_ALLOW_PRIVATE="0")
    app = start_app(processes, tmp_path, redis_url)
    done = app.wait_done(submit(app, "fal"), timeout=60)
    assert done["status"] == "failed" and "non-https" in done["error"], done
    assert server.count("GET", r"^/files/") == 0


def test_openai_bad_key_marks_the_backend_misconfigured(processes, tmp_path, redis_url, server) -> None:
    hosted_worker(processes, redis_url, server, OPENAI_VIDEOS_API_KEY="sk-wrong-key-000000")
    app = start_app(processes, tmp_path, redis_url)
    done = app.wait_done(submit(app, "openai"), timeout=60)
    assert done["status"] == "failed" and "refused the API key" in done["error"], done
    listed = {b["name"]: b for b in app.client.get("/api/v1/backends").json()["backends"]}
    openai = listed["openai-videos"]
    assert not openai["available"] and "misconfigured" in openai["unavailable_reason"]
    assert "OPENAI_VIDEOS_API_KEY" in openai["unavailable_reason"] and "sk-wrong" not in openai["unavailable_reason"]
    assert listed["fal"]["available"]
    refused = app.submit(prompt="again", backend="openai-videos")
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "backend_unavailable"


@pytest.mark.parametrize("provider", ["openai", "fal", "replicate"])
def test_cancel_reaches_the_provider(app: App, server: HostedServer, provider: str) -> None:
    server.script.outcome = "stuck"
    job_id = submit(app, provider)
    wait_for(lambda: server.count("GET", STATUS[provider]) >= 1, timeout=60, what="a first poll")
    answer = app.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert answer.status_code == 202 and answer.json()["status"] == "canceling"
    assert app.wait_done(job_id, timeout=30)["status"] == "canceled"
    method, path = CANCEL[provider]
    assert server.count(method, path) == 1 and all(r.canceled for r in server.remotes.values())


def test_hf_cancel_is_answered_while_the_provider_works(app: App, server: HostedServer) -> None:
    server.script.outcome = "stuck"  # InferenceClient gives no remote id: the provider's run is left to finish
    job_id = submit(app, "hf")
    wait_for(lambda: server.count("GET", STATUS["hf"]) >= 1, timeout=60, what="a first poll")
    running = status(app, job_id)
    assert running["status"] == "running" and "waiting for the provider" in running["message"]
    assert app.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202
    assert app.wait_done(job_id, timeout=30)["status"] == "canceled"
    server.script.outcome = "ok"
    assert app.wait_done(submit(app, "fal"), timeout=60)["status"] == "succeeded"  # the worker moved on


@pytest.mark.parametrize("provider", ["openai", "fal", "replicate"])
def test_resume_after_the_worker_is_killed(processes, tmp_path, redis_url, server, provider: str) -> None:
    first = hosted_worker(processes, redis_url, server)
    app = start_app(processes, tmp_path, redis_url)
    server.script.polls = 3
    job_id = submit(app, provider)
    wait_for(lambda: server.count("GET", STATUS[provider]) >= 1, timeout=60, what="a first poll")
    first.stop(signal.SIGKILL)
    polls = server.count("GET", STATUS[provider])
    hosted_worker(processes, redis_url, server)
    done = app.wait_done(job_id, timeout=90)
    assert done["status"] == "succeeded", done
    assert server.count("POST", CREATE[provider]) == 1 and len(server.remotes) == 1
    assert server.count("GET", STATUS[provider]) > polls  # the new worker polled the same remote job


def test_one_worker_keeps_16_remote_jobs_in_flight(app: App, server: HostedServer) -> None:
    server.script.polls = 6
    ids = [submit(app, "fal") for _ in range(16)]
    wait_for(lambda: len(server.remotes) == 16, timeout=60, what="16 remote jobs")
    assert server.active() == 16  # all sent before the first one finished
    assert all(app.wait_done(i, timeout=120)["status"] == "succeeded" for i in ids)


def test_hosted_backends_without_keys_are_unavailable(processes, tmp_path, redis_url) -> None:
    app = start_app(processes, tmp_path, redis_url)
    listed = {b["name"]: b for b in app.client.get("/api/v1/backends").json()["backends"]}
    for name, env in [
        ("hf-inference", "HF_TOKEN"),
        ("openai-videos", "OPENAI_VIDEOS_API_KEY"),
        ("fal", "FAL_KEY"),
        ("replicate", "REPLICATE_API_TOKEN"),
    ]:
        assert not listed[name]["available"] and env in listed[name]["unavailable_reason"]
        assert listed[name]["kind"] == "hosted"
    assert "OPENAI_VIDEOS_BASE_URL" in listed["openai-videos"]["unavailable_reason"]
    assert listed["openai-videos"]["seed"] is False
    refused = subprocess.run(
        [sys.executable, "worker.py", "--backends", "fal"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=base_env(REDIS_URL=redis_url),
        timeout=60,
    )
    assert refused.returncode != 0 and "set FAL_KEY in the worker's environment" in refused.stderr


def test_settings_read_the_variables_each_hosted_backend_names() -> None:
    hosted = [cls for cls in BACKEND_CLASSES.values() if cls.kind == "hosted"]
    assert len(hosted) == 4
    for cls in hosted:
        key = "key-of-" + cls.name
        gateway = {cls.url_env: "https://gateway.example/v1/"} if cls.url_env else {}
        settings = Settings.from_env({cls.key_env: key, **gateway})
        assert settings.hosted_key(cls.key_env) == key and key not in repr(settings)
        assert not cls.url_env or settings.hosted_url(cls.url_env) == "https://gateway.example/v1"
        assert cls(settings).availability().usable, cls.name


def test_keys_never_reach_redis_logs_or_the_dataset(app: App, server: HostedServer, module_processes) -> None:
    server.script.create_errors = [401]  # a refusal quotes the provider's answer, never our key
    ids = [submit(app, provider) for provider in ("hf", "openai", "fal", "replicate")]
    for job_id in ids:
        app.wait_done(job_id, timeout=60)
    assert sum(status(app, i)["status"] == "succeeded" for i in ids) == 3
    assert set(server.auth) >= {"Bearer " + KEYS["openai"], "Key " + KEYS["fal"], "Bearer " + KEYS["replicate"]}
    haystacks = [_redis_dump(Redis.from_url(app.redis_url))]
    haystacks += [p.log.read_bytes() for p in module_processes.started]
    haystacks += [p.read_bytes() for p in app.data.rglob("*") if p.is_file()]
    for key in KEYS.values():
        assert not any(key.encode() in h for h in haystacks), f"{key[:6]}... leaked"


def _redis_dump(redis: Redis) -> bytes:
    """Every key and value in Redis, RQ's compressed job payloads opened."""
    out = []
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key).decode()
        if kind == "string":
            values = [redis.get(key)]
        elif kind == "hash":
            values = [x for kv in redis.hgetall(key).items() for x in kv]
        elif kind == "list":
            values = redis.lrange(key, 0, -1)
        elif kind == "set":
            values = list(redis.smembers(key))
        elif kind == "zset":
            values = redis.zrange(key, 0, -1)
        elif kind == "stream":  # RQ's results
            values = [x for _, entry in redis.xrange(key) for kv in entry.items() for x in kv]
        else:
            raise AssertionError(f"unexpected Redis type {kind} at {key!r}")
        for value in [key, *values]:
            out.append(value or b"")
            try:
                out.append(zlib.decompress(value))
            except (zlib.error, TypeError):
                pass
    return b"\n".join(out)


def test_an_image_leaves_redis_when_its_job_ends(app: App, server: HostedServer) -> None:
    """Succeeded, failed or canceled: no key holds the start image's bytes, nor anything its size."""
    marker = secrets.token_hex(16)
    info = PngInfo()
    info.add_text("marker", marker)
    buffer = io.BytesIO()
    Image.effect_noise((300, 300), 80).save(buffer, format="PNG", pnginfo=info)  # noise: no key compresses it
    picture = buffer.getvalue()
    image = base64.b64encode(picture).decode()
    redis = Redis.from_url(app.redis_url)
    ended = []
    for outcome, status_wanted in (("ok", "succeeded"), ("policy", "failed"), ("stuck", "canceled")):
        server.script.outcome = outcome
        job_id = submit(app, "openai", image=image)
        if status_wanted == "canceled":
            wait_for(lambda: status(app, job_id)["status"] == "running", timeout=30, what="the job running")  # noqa: B023
            assert app.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202
        ended.append(app.wait_done(job_id, timeout=60)["status"])
    assert ended == ["succeeded", "failed", "canceled"]
    assert server.bodies[0]["input_reference"] == picture  # the image did reach the provider
    assert marker.encode() not in _redis_dump(redis)
    biggest = max(redis.scan_iter(count=1000), key=lambda key: redis.memory_usage(key) or 0)
    assert redis.memory_usage(biggest) < len(picture) // 2, biggest
