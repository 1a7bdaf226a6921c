"""The open-model backends (cogvideox, ltx-video, mochi, wan) with tiny real pipelines on the CPU.

Each family's tiny random-weight pipeline is saved in diffusers layout once per session and
loaded through the backend's real `from_pretrained` path by a real worker process, fed by the
real app through Redis. Test ids name the family.
"""

from __future__ import annotations

import ast
import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

from backends import BACKEND_CLASSES
from backends.base import Cancelled, Checkpoint, FrameRule, SizeRule
from backends.local_model import LocalModelBackend, model_params
from dailies.contract.media import first_frame, probe_mp4
from dailies.contract.settings import Settings
from dailies.contract.spec import JobSpec, new_id
from tests.conftest import ROOT, App, Processes, start_app, wait_for
from tests.harness import png, run_job
from tests.published_rules import RULES, Published, published
from tests.tiny_pipelines import FAMILIES, OwnPipeline, save_tiny, smallest_frames, tiny_job

pytest.importorskip("diffusers", reason="model dependencies are not installed (requirements-models.txt)")
pytestmark = pytest.mark.models

# The checkpoint each family's tiny image-to-video pipeline stands for (tiny wan-i2v is built TI2V style).
I2V_MODEL = {"cogvideox": "5b", "ltx-video": "0.9.1", "wan": "2.2-5b"}
IMAGE_TO_VIDEO = tuple(I2V_MODEL)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-models")
    return {name: save_tiny(name, folder) for name in (*FAMILIES, "cogvideox-i2v", "wan-i2v")}


def model_env(tiny: dict[str, Path]) -> dict[str, str]:
    return {
        "DAILIES_DEVICE": "cpu",
        "DAILIES_MODEL_COGVIDEOX": str(tiny["cogvideox"]),
        "DAILIES_MODEL_COGVIDEOX_I2V": str(tiny["cogvideox-i2v"]),
        "DAILIES_MODEL_LTX_VIDEO": str(tiny["ltx-video"]),
        "DAILIES_MODEL_MOCHI": str(tiny["mochi"]),
        "DAILIES_MODEL_WAN": str(tiny["wan"]),
        "DAILIES_MODEL_WAN_I2V": str(tiny["wan-i2v"]),
    }


@pytest.fixture(scope="module")
def studio(module_redis: str, tiny_models: dict[str, Path], module_processes: Processes) -> tuple[App, Processes]:
    """The app plus one CPU worker serving all four families from the tiny checkpoints."""
    module_processes.worker(module_redis, backends=",".join(FAMILIES), **model_env(tiny_models))
    app = start_app(
        module_processes,
        module_processes.tmp_path,
        module_redis,
        DAILIES_USER_MAX_ACTIVE="50",
        DAILIES_USER_MAX_PER_HOUR="1000",
    )
    return app, module_processes


@pytest.mark.parametrize("family", FAMILIES)
def test_text_to_video_at_64x64_in_2_steps_through_the_app(studio, family: str) -> None:
    app, processes = studio
    frames, fps = smallest_frames(family), published(family).fps
    result = run_job(app, **tiny_job(family, prompt="a red boat on the sea", seed=5))["result"]
    assert (result["width"], result["height"], result["num_frames"], result["fps"]) == (64, 64, frames, fps)
    assert result["model"] == f"local:{family}"
    info = probe_mp4(app.client.get(result["video_url"]).content)
    assert (info.codec, info.pix_fmt, info.width, info.height, info.num_frames) == ("h264", "yuv420p", 64, 64, frames)
    assert info.fps == fps
    assert app.client.get(result["poster_url"]).content[:2] == b"\xff\xd8"
    stored = app.client.get(f"/api/v1/generations/{result['generation_id']}").json()
    assert stored["params"] == {"model": stored["params"]["model"], "steps": 2, "guidance": None}


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_frames_and_second_job_does_not_load_again(studio, family: str) -> None:
    app, processes = studio
    body = tiny_job(family, prompt="the city at night")
    jobs = [run_job(app, **body, seed=seed)["result"] for seed in (21, 21, 22)]
    # The poster is the middle frame as the model made it (JPEG from identical pixels is identical);
    # the MP4s are not compared byte for byte: libx264 here now and then differs for identical frames.
    posters = [app.client.get(job["poster_url"]).content for job in jobs]
    assert posters[0] == posters[1]
    assert posters[2] != posters[0]
    assert all(probe_mp4(app.client.get(j["video_url"]).content).num_frames == smallest_frames(family) for j in jobs)
    timings = [app.client.get(f"/api/v1/generations/{j['generation_id']}").json()["timings"] for j in jobs]
    # The first job of this module on the family may have loaded it; these reuse the resident pipeline.
    assert all(t["load_s"] == 0.0 for t in timings[1:]) and all(t["generate_s"] > 0 for t in timings)
    worker_log = processes.started[0].output()
    assert worker_log.count(f"loading {family} text-to-video") == 1, worker_log[-3000:]


@pytest.mark.parametrize("family", IMAGE_TO_VIDEO)
def test_image_to_video(studio, family: str) -> None:
    app, processes = studio
    body = tiny_job(family, model=I2V_MODEL[family], prompt="a cat walks", seed=3)
    result = run_job(app, **body, image=png((220, 40, 40)))["result"]
    video = app.client.get(result["video_url"]).content
    assert probe_mp4(video).num_frames == smallest_frames(family, I2V_MODEL[family])
    other = run_job(app, **body, image=png((40, 40, 220)))["result"]
    # Same seed and prompt, another start image: the image reached the model.
    assert first_frame(app.client.get(other["video_url"]).content).tolist() != first_frame(video).tolist()


@pytest.mark.parametrize("family", IMAGE_TO_VIDEO)
def test_image_that_is_not_a_picture_is_refused_at_submit(studio, family: str) -> None:
    app, _ = studio
    picture = base64.b64encode(b"not a picture at all").decode()
    answer = app.submit(**tiny_job(family, model=I2V_MODEL[family], prompt="x", image=picture))
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "image"
    assert "not a readable picture" in answer.json()["error"]["message"]


@pytest.mark.parametrize("family", FAMILIES)
def test_cancel_mid_run(studio, family: str) -> None:
    app, _ = studio
    # 200 steps keeps even a tiny model busy for a few seconds.
    job = app.submit(**tiny_job(family, prompt="a long night", steps=200, seed=1)).json()

    def stepping():
        status = app.client.get(f"/api/v1/jobs/{job['id']}").json()
        return status["status"] == "running" and "step" in status["message"] and status

    seen = wait_for(stepping, 120, what="the model to be stepping")
    assert app.client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 202
    done = app.wait_done(job["id"], timeout=60)
    assert done["status"] == "canceled" and done["progress"] < 0.9, (seen, done)
    # The worker is free again and the pipeline still works after the interruption.
    run_job(app, **tiny_job(family, prompt="after", seed=1))


@pytest.mark.parametrize("family", FAMILIES)
def test_rule_violations_refused_with_422(studio, family: str) -> None:
    app, _ = studio
    body = tiny_job(family, prompt="x")
    # One frame past the smallest count (every family's frame step is 4 or more: the nearest is the smallest),
    # a width a quarter multiple past 64, a height under the published minimum of 64.
    smallest, multiple = smallest_frames(family), published(family).size[0]
    cases = [
        ({**body, "num_frames": smallest + 1}, "num_frames", f"nearest valid value: {smallest}"),
        ({**body, "width": 64 + multiple // 4}, "width", "nearest valid value: 64"),
        ({**body, "height": 32}, "height", "nearest valid value: 64"),
        ({**body, "model": "99b"}, "model", "must be one of"),
        ({**body, "steps": 0}, "steps", "at least 1"),
        ({**body, "fps": 1}, "fps", "fps must be"),
    ]
    if family not in IMAGE_TO_VIDEO:
        cases.append(({**body, "image": png((0, 0, 0))}, "image", "does not do image-to-video"))
    for sent, name, message in cases:
        answer = app.submit(**sent)
        error = answer.json()["error"]
        assert answer.status_code == 422 and error["field"] == name and message in error["message"], (sent, error)


def test_rules_follow_the_chosen_checkpoint(studio) -> None:
    app, _ = studio
    wan_22, wan_13 = published("wan", "2.2-5b"), published("wan", "2.1-1.3b")
    # CogVideoX 1.5 5B takes only its two published lengths, and the message names them.
    assert published("cogvideox", "1.5-5b").valid_frames() == [81, 161]
    answer = app.submit(**tiny_job("cogvideox", model="1.5-5b", prompt="x", num_frames=49))
    error = answer.json()["error"]
    assert answer.status_code == 422 and error["field"] == "num_frames", error
    assert "81 or 161 for CogVideoX 1.5 5B" in error["message"], error

    # Wan 2.2 TI2V 5B without an fps gets its own 24, not the family's 16; the video is made at it.
    assert (wan_22.fps, wan_13.fps) == (24, 16)
    status = run_job(app, **tiny_job("wan", model="2.2-5b", prompt="a boat", seed=2))
    assert status["request"]["fps"] == wan_22.fps and status["result"]["fps"] == wan_22.fps
    assert probe_mp4(app.client.get(status["result"]["video_url"]).content).fps == wan_22.fps

    # Wan 2.1 1.3B has no image-to-video weights: an image is refused before anything is queued.
    assert not wan_13.image_to_video
    answer = app.submit(**tiny_job("wan", model="2.1-1.3b", prompt="x", image=png((0, 0, 0))))
    error = answer.json()["error"]
    assert answer.status_code == 422 and error["field"] == "image" and "Wan 2.1 1.3B" in error["message"], error


def described(entry: dict) -> dict:
    """The rules as GET /api/v1/backends lists them (a model, or a backend's top level)."""
    frames, size = entry["frames"], entry["size"]
    return {
        "frames": (frames["rule"], frames["minimum"], frames["maximum"], frames["default"]),
        "size": (size["multiple"], size["minimum"], size["maximum"], tuple(size["default"])),
        "fps": (entry["fps"], tuple(entry["fps_range"]) if entry["fps_range"] else None),
        **({"defaults": (entry["steps"], entry["guidance"], entry["modes"])} if "steps" in entry else {}),
    }


def expected(rules: Published, top_level: bool = False) -> dict:
    """The same from the published table (a backend's top level lists no steps, guidance or modes of its own)."""
    step, low, high, default = rules.frames
    out = {
        "frames": (f"{step}k+{rules.frame_rule[1]}", low, high, default),
        "size": (*rules.size, rules.default_size),
        "fps": (rules.fps, rules.fps_range),
    }
    if not top_level:
        modes = ["image-to-video", "text-to-video"] if rules.image_to_video else ["text-to-video"]
        out["defaults"] = (rules.steps, rules.guidance, modes)
    return out


def test_backends_describe_their_rules_per_model(studio) -> None:
    app, _ = studio
    listed = {b["name"]: b for b in app.client.get("/api/v1/backends").json()["backends"]}
    for name in FAMILIES:
        models = {m["name"]: m for m in listed[name]["models"]}
        assert list(models)[0] == next(iter(RULES[name])) and sorted(models) == sorted(RULES[name])
        for model, rules in RULES[name].items():
            assert described(models[model]) == expected(rules), (name, model)
        # The top-level rules stay those of the default model, for the page.
        assert described(listed[name]) == expected(published(name), top_level=True), name
        assert listed[name]["available"] and listed[name]["negative_prompt"] and listed[name]["kind"] == "open"
    wan = {m["name"]: m for m in listed["wan"]["models"]}
    assert wan["2.2-5b"]["fps"] == 24 and wan["2.1-1.3b"]["modes"] == ["text-to-video"]
    assert "image-to-video" in listed["ltx-video"]["modes"] and listed["mochi"]["modes"] == ["text-to-video"]


def test_backends_import_without_torch_and_say_why_they_are_unavailable() -> None:
    code = (
        "import sys, backends; from dailies.contract.settings import Settings\n"
        "s = Settings.from_env({'DAILIES_DEVICE': 'auto'})\n"
        "print([(b.name, b.availability().reason) for b in backends.all_backends(s) if b.kind == 'open'])\n"
        "import dailies.worker.models\n"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    reasons, imported = out.strip().splitlines()
    assert imported == "False False"
    from backends.local_model import NO_GPU, gpu_visible

    if not gpu_visible():
        listed = ast.literal_eval(reasons)  # every local-model family
        assert len(listed) == sum(cls.kind == "open" for cls in BACKEND_CLASSES.values()) >= 5, reasons
        assert all(reason == NO_GPU for _, reason in listed), reasons


def test_memory_budget_evicts_the_least_recently_used_ltx_video_and_wan(
    processes: Processes, tmp_path: Path, redis_url: str, tiny_models: dict[str, Path]
) -> None:
    # A budget below one tiny model: the worker keeps only the pipeline it used last.
    processes.worker(redis_url, backends="ltx-video,wan", DAILIES_MODEL_MEMORY_GB="0.000001", **model_env(tiny_models))
    app = start_app(processes, tmp_path, redis_url)
    for family in ("ltx-video", "wan", "ltx-video"):
        run_job(app, **tiny_job(family, prompt="a dog", seed=1))
    log = processes.started[0].output()
    assert log.count("loading ltx-video text-to-video") == 2 and log.count("loading wan text-to-video") == 1, log
    assert log.count("evicting") == 2


def test_ltx_video_published_weights_from_the_hub_cache_offline_and_mochi_missing_weights(
    processes: Processes, tmp_path: Path, redis_server: str, tiny_models: dict[str, Path]
) -> None:
    # The tiny LTX checkpoint sits in a Hub cache under the default variant's repo id, as a download would.
    cache = tmp_path / "hub"
    snapshot = cache / "models--Lightricks--LTX-Video-0.9.1" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_models["ltx-video"], snapshot)
    (cache / "models--Lightricks--LTX-Video-0.9.1" / "refs").mkdir()
    (cache / "models--Lightricks--LTX-Video-0.9.1" / "refs" / "main").write_text("0" * 40)
    redis_url = redis_server.rsplit("/", 1)[0] + "/2"
    Redis.from_url(redis_url).flushdb()
    processes.worker(
        redis_url,
        backends="ltx-video,mochi",
        DAILIES_DEVICE="cpu",
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(cache),
        DAILIES_MODEL_MOCHI=str(tmp_path / "no-such-folder"),
    )
    app = start_app(processes, tmp_path, redis_url)
    result = run_job(app, **tiny_job("ltx-video", prompt="a dog"))["result"]
    assert result["model"] == "Lightricks/LTX-Video-0.9.1" and result["num_frames"] == 9

    failed = app.submit(**tiny_job("mochi", prompt="a dog")).json()
    status = app.wait_done(failed["id"], timeout=60)
    assert status["status"] == "failed" and "could not load the Mochi 1 weights" in status["error"]
    assert "DAILIES_MODEL_MOCHI" in status["error"]


class OwnFamily(LocalModelBackend):
    """A family whose pipeline is our own class, named by dotted path, with a staged progress total."""

    name = "own"
    display_name = "Own"
    pipeline = "tests.tiny_pipelines.OwnPipeline"
    requires = ("torch",)
    checkpoints = (
        Checkpoint(
            "v1",
            frames=FrameRule(step=1, offset=0, minimum=1, maximum=16, default=4),
            size=SizeRule(multiple=16, minimum=16, maximum=64, default=(32, 32)),
            fps=8,
            steps=3,
            guidance=1.0,
            repo="nobody/own-v1",
        ),
    )
    params = model_params(checkpoints)

    def total_steps(self, request: JobSpec, checkpoint: Checkpoint, steps: int) -> int:
        return OwnPipeline.stages * steps


def test_a_pipeline_that_is_not_a_diffusers_class_runs_through_the_shared_runtime(tmp_path: Path) -> None:
    folder = OwnPipeline.save(tmp_path / "own-v1")
    settings = Settings.from_env({"DAILIES_DEVICE": "cpu", "DAILIES_MODEL_OWN": str(folder)})
    backend = OwnFamily(settings)
    assert backend.availability().usable
    spec = JobSpec(
        id=new_id(), backend="own", prompt="x", negative_prompt="", seed=4, width=32, height=16, num_frames=5, fps=8,
        params={"model": "v1", "steps": None, "guidance": None},
    )  # fmt: skip
    seen: list[tuple[float, str]] = []
    first = backend.generate(spec, lambda fraction, message: seen.append((fraction, message)), lambda: False)
    again = backend.generate(spec, lambda fraction, message: None, lambda: False)

    info = probe_mp4(first.mp4)
    assert (info.width, info.height, info.num_frames, info.fps) == (32, 16, 5, 8)
    assert first.model == "local:own-v1" and first.extra["steps"] == OwnFamily.checkpoints[0].steps
    steps = [message for _, message in seen if message.startswith("step")]
    total = OwnPipeline.stages * OwnFamily.checkpoints[0].steps
    assert steps == [f"step {i}/{total}" for i in range(1, total + 1)]
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and max(f for f, _ in seen) < 1
    # Seeded through the generator, loaded once: the second run is the same video, without a load.
    assert again.poster == first.poster and again.extra["timings"]["load_s"] == 0.0

    calls = iter(range(100))
    with pytest.raises(Cancelled):
        backend.generate(spec, lambda fraction, message: None, lambda: next(calls) >= 3)
