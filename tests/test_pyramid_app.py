"""`pyramid-flow` through the real app, Redis queue and worker, on the tiny checkpoint in the official layout.

The worker loads it from DAILIES_MODEL_PYRAMID_FLOW exactly as it would load the published repo
folder; jobs are 64x64 and 9 frames (two latent frames), one step per stage.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from redis import Redis

from dailies.contract.media import first_frame, probe_mp4
from tests.conftest import App, Processes, start_app, wait_for
from tests.harness import png, run_job
from tests.tiny_pyramid import save_tiny_pyramid

pytest.importorskip("torch", reason="model dependencies are not installed (requirements-models.txt)")
pytestmark = pytest.mark.pyramid


def job(**body) -> dict:
    return {
        "backend": "pyramid-flow",
        "prompt": "a red boat on the sea",
        "width": 64,
        "height": 64,
        "num_frames": 9,
        "steps": 1,
        "video_steps": 1,
        **body,
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_pyramid(tmp_path_factory.mktemp("pyramid"))


@pytest.fixture(scope="module")
def studio(module_redis: str, module_processes: Processes, tiny: Path) -> tuple[App, Processes]:
    module_processes.worker(
        module_redis, backends="pyramid-flow", DAILIES_DEVICE="cpu", DAILIES_MODEL_PYRAMID_FLOW=str(tiny)
    )
    app = start_app(module_processes, module_processes.tmp_path, module_redis)
    return app, module_processes


def test_text_to_video_same_seed_same_frames(studio) -> None:
    app, processes = studio
    results = [run_job(app, **job(seed=seed))["result"] for seed in (5, 5, 6)]
    first = results[0]
    assert (first["width"], first["height"], first["num_frames"], first["fps"]) == (64, 64, 9, 24)
    assert first["model"] == "local:diffusion_transformer_384p"  # a local folder: its name only
    info = probe_mp4(app.client.get(first["video_url"]).content)
    assert (info.codec, info.pix_fmt, info.width, info.height, info.num_frames, info.fps) == (
        "h264",
        "yuv420p",
        64,
        64,
        9,
        24,
    )
    posters = [app.client.get(r["poster_url"]).content for r in results]
    assert posters[0][:2] == b"\xff\xd8" and posters[0] == posters[1] and posters[2] != posters[0]
    stored = app.client.get(f"/api/v1/generations/{first['generation_id']}").json()
    assert stored["seed"] == 5 and stored["params"]["video_steps"] == 1
    timings = [app.client.get(f"/api/v1/generations/{r['generation_id']}").json()["timings"] for r in results]
    assert all(t["load_s"] == 0.0 for t in timings[1:])  # resident after the first job
    assert processes.started[0].output().count("loading pyramid-flow text-to-video") == 1


def test_image_to_video(studio) -> None:
    app, processes = studio
    red = run_job(app, **job(seed=3, image=png((220, 40, 40))))["result"]
    blue = run_job(app, **job(seed=3, image=png((40, 40, 220))))["result"]
    video = app.client.get(red["video_url"]).content
    assert probe_mp4(video).num_frames == 9
    # Same seed and prompt, another start image: the video starts from the image.
    red_first, blue_first = first_frame(video), first_frame(app.client.get(blue["video_url"]).content)
    assert red_first[..., 0].mean() - red_first[..., 2].mean() > blue_first[..., 0].mean() - blue_first[..., 2].mean()
    # Image-to-video shares the resident text-to-video weights.
    assert "loading pyramid-flow image-to-video" not in processes.started[0].output()


def test_the_768p_checkpoint_loads_its_own_transformer(studio) -> None:
    app, processes = studio
    low = run_job(app, **job(seed=7))["result"]
    high = run_job(app, **job(seed=7, model="768p"))["result"]
    assert app.client.get(low["poster_url"]).content != app.client.get(high["poster_url"]).content


def test_cancel_mid_generation(studio) -> None:
    app, _ = studio
    answer = app.submit(**job(steps=100, video_steps=100, seed=1)).json()

    def stepping():
        status = app.client.get(f"/api/v1/jobs/{answer['id']}").json()
        return status["status"] == "running" and "step" in status["message"] and status

    seen = wait_for(stepping, 300, what="the model to be stepping")
    assert seen["message"].endswith("/600")  # 3 stages x 100 steps for each of the two latent frames
    assert app.client.post(f"/api/v1/jobs/{answer['id']}/cancel").status_code == 202
    done = app.wait_done(answer["id"], timeout=120)
    assert done["status"] == "canceled" and done["progress"] < 0.9, (seen, done)
    run_job(app, **job(seed=1))["result"]  # the worker and the pipeline still work


def test_rules_and_description(studio) -> None:
    app, _ = studio
    listed = {b["name"]: b for b in app.client.get("/api/v1/backends").json()["backends"]}
    pyramid = listed["pyramid-flow"]
    assert (pyramid["frames"]["rule"], pyramid["size"]["multiple"], pyramid["fps"]) == ("8k+1", 64, 24)
    assert pyramid["modes"] == ["image-to-video", "text-to-video"] and pyramid["available"]
    assert {"model", "steps", "guidance", "video_steps", "video_guidance"} <= {p["name"] for p in pyramid["params"]}
    models = {m["name"]: m for m in pyramid["models"]}
    assert (models["384p"]["frames"]["maximum"], models["768p"]["frames"]["maximum"]) == (121, 241)  # 5 s, 10 s
    assert (models["384p"]["size"]["default"], models["768p"]["size"]["default"]) == ([640, 384], [1280, 768])
    for change, field, message in [
        ({"num_frames": 129}, "num_frames", "121"),  # 10 s only at 768p
        ({"num_frames": 10}, "num_frames", "nearest valid value: 9"),
        ({"width": 96}, "width", "nearest valid value"),
        ({"model": "1080p"}, "model", "must be one of"),
        ({"video_steps": 0}, "video_steps", "at least 1"),
    ]:
        answer = app.submit(**job(**change))
        error = answer.json()["error"]
        assert answer.status_code == 422 and error["field"] == field and message in error["message"], (change, error)


def test_published_repo_from_the_hub_cache_offline(
    processes: Processes, tmp_path: Path, redis_server: str, tiny: Path
) -> None:
    # The tiny checkpoint sits in a Hub cache under the published repo id, as a download would.
    repo = tmp_path / "hub" / "models--rain1011--pyramid-flow-miniflux"
    shutil.copytree(tiny, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    redis_url = redis_server.rsplit("/", 1)[0] + "/3"  # its own database: the studio's worker cannot take these
    Redis.from_url(redis_url).flushdb()
    processes.worker(
        redis_url, backends="pyramid-flow", DAILIES_DEVICE="cpu", HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(repo.parent)
    )
    app = start_app(processes, tmp_path, redis_url)
    result = run_job(app, **job(seed=2, model="768p"))["result"]
    assert result["model"] == "rain1011/pyramid-flow-miniflux/diffusion_transformer_768p"
