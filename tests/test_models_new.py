"""LTX-2 (video with sound) and HunyuanVideo 1.5 on tiny random weights, through the real app and worker.

The tiny pipelines keep each model's real VAE strides, so the jobs meet the declared rules; LTX-2's
tiny audio VAE and vocoder make a real (random) sound track that the worker muxes into the MP4.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dailies.contract.media import first_frame, probe_mp4
from tests.conftest import App, Processes, start_app, wait_for
from tests.harness import png, run_job
from tests.hub_server import HubServer
from tests.sound_checks import assert_video_with_sound
from tests.tiny_pipelines import save_tiny, smallest_frames, tiny_job

pytest.importorskip("diffusers", reason="model dependencies are not installed (requirements-models.txt)")
pytestmark = pytest.mark.models
REPO = "user/dailies-new-models"


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def studio(
    module_redis: str, tmp_path_factory: pytest.TempPathFactory, module_processes: Processes, hub: HubServer
) -> App:
    """The app (publishing to the Hub stand-in) plus one CPU worker serving ltx-2 and hunyuanvideo
    from tiny checkpoints."""
    folder = tmp_path_factory.mktemp("tiny-new-models")
    tiny = {name: save_tiny(name, folder) for name in ("ltx-2", "hunyuanvideo", "hunyuanvideo-i2v")}
    url = module_redis
    module_processes.worker(
        url,
        backends="ltx-2,hunyuanvideo",
        DAILIES_DEVICE="cpu",
        DAILIES_MODEL_LTX_2=str(tiny["ltx-2"]),
        DAILIES_MODEL_HUNYUANVIDEO=str(tiny["hunyuanvideo"]),
        DAILIES_MODEL_HUNYUANVIDEO_I2V=str(tiny["hunyuanvideo-i2v"]),
    )
    hub_env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token, "HF_DATASET_REPO": REPO, "DAILIES_COMMIT_EVERY": "0.2"}
    return start_app(
        module_processes,
        module_processes.tmp_path,
        url,
        DAILIES_USER_MAX_ACTIVE="50",
        DAILIES_USER_MAX_PER_HOUR="1000",
        **hub_env,
    )


@pytest.mark.hub
@pytest.mark.browser
def test_ltx2_makes_video_with_sound_of_the_same_length(studio: App, hub: HubServer, browser) -> None:
    result = run_job(studio, **tiny_job("ltx-2", prompt="a dog on a boat", seed=5))["result"]
    assert (result["width"], result["height"], result["num_frames"], result["fps"]) == (64, 64, 9, 24)
    assert result["has_audio"] is True and result["model"] == "local:ltx-2"
    info = assert_video_with_sound(studio.client.get(result["video_url"]).content)
    assert info.num_frames == 9 and info.audio.channels == 2
    generation = studio.client.get(f"/api/v1/generations/{result['generation_id']}").json()
    assert generation["has_audio"] is True and generation["params"]["sound"] is True

    # On the Hub stand-in: the row says so, and the MP4 there carries the sound.
    def published() -> dict | None:
        rows = hub.metadata_rows(REPO) if REPO in hub.repos else []
        return next((r for r in rows if r["id"] == result["generation_id"]), None)

    row = wait_for(published, 60, what="the row on the Hub")
    assert row["has_audio"] is True
    assert_video_with_sound(next(v for p, v in hub.files(REPO).items() if p.endswith(row["file_name"])))

    # In the gallery: the card is marked.
    page = browser.new_page()
    page.goto(studio.url)
    page.get_by_role("tab", name="Gallery").click()
    card = page.locator(f'#gallery-grid .dailies-card[data-id="{result["generation_id"]}"]')
    card.wait_for()
    assert card.locator(".dailies-card-sound").is_visible()
    page.close()


def test_ltx2_sound_switched_off_gives_a_silent_video(studio: App) -> None:
    result = run_job(studio, **tiny_job("ltx-2", prompt="a dog on a boat", seed=5, sound=False))["result"]
    assert result["has_audio"] is False
    assert probe_mp4(studio.client.get(result["video_url"]).content).audio is None


def test_ltx2_distilled_runs_the_two_stage_recipe_with_the_latent_upsampler(
    studio: App, module_processes: Processes
) -> None:
    body = tiny_job("ltx-2", prompt="the sea at night", model="2.0-distilled", seed=2)
    del body["steps"]  # the checkpoint's own 8 distilled steps, then 3 refining steps
    results = [
        run_job(studio, **body)["result"],
        run_job(studio, **body, image=png((220, 40, 40)))["result"],
    ]  # t2v, then i2v
    assert all((r["width"], r["height"], r["num_frames"]) == (64, 64, 9) for r in results)
    assert_video_with_sound(studio.client.get(results[0]["video_url"]).content)
    generation = studio.client.get(f"/api/v1/generations/{results[0]['generation_id']}").json()
    assert generation["timings"]["generate_s"] > 0
    log = module_processes.started[0].output()
    assert log.count("loading the ltx-2 latent upsampler") == 1, log[-3000:]  # loaded once, kept


def test_ltx2_image_to_video_with_sound(studio: App) -> None:
    red = run_job(studio, **tiny_job("ltx-2", prompt="a cat walks", seed=3, image=png((220, 40, 40))))["result"]
    blue = run_job(studio, **tiny_job("ltx-2", prompt="a cat walks", seed=3, image=png((40, 40, 220))))["result"]
    videos = [studio.client.get(r["video_url"]).content for r in (red, blue)]
    assert_video_with_sound(videos[0])
    assert first_frame(videos[0]).tolist() != first_frame(videos[1]).tolist()  # the image reached the model


def test_ltx2_rules_are_refused_with_422(studio: App) -> None:
    cases = [
        (tiny_job("ltx-2", prompt="x", num_frames=12), "num_frames", "nearest valid value: 9"),
        (tiny_job("ltx-2", prompt="x", width=80), "width", "nearest valid value"),
        (tiny_job("ltx-2", prompt="x", model="2.0-distilled", width=96), "width", "nearest valid value: 128"),
        (tiny_job("ltx-2", prompt="x", sound="yes"), "sound", "true or false"),
    ]
    for sent, field, message in cases:
        answer = studio.submit(**sent)
        error = answer.json()["error"]
        assert answer.status_code == 422 and error["field"] == field and message in error["message"], (sent, error)


def test_hunyuanvideo_text_to_video_and_image_to_video(studio: App) -> None:
    text = run_job(studio, **tiny_job("hunyuanvideo", prompt="a red boat on the sea", seed=4))["result"]
    frames = smallest_frames("hunyuanvideo")
    assert (text["width"], text["height"], text["num_frames"], text["fps"]) == (64, 64, frames, 24)
    assert text["has_audio"] is False
    info = probe_mp4(studio.client.get(text["video_url"]).content)
    assert (info.codec, info.num_frames, info.audio) == ("h264", frames, None)
    body = tiny_job("hunyuanvideo", prompt="a red boat on the sea", seed=4, image=png((30, 200, 30)))
    image = run_job(studio, **body)["result"]
    assert image["model"] == "local:hunyuanvideo-i2v" and image["num_frames"] == frames
    assert probe_mp4(studio.client.get(image["video_url"]).content).num_frames == frames


def test_hunyuanvideo_cancel_between_steps(studio: App) -> None:
    job = studio.submit(**tiny_job("hunyuanvideo", prompt="a long night", steps=200, seed=1)).json()

    def stepping():
        status = studio.client.get(f"/api/v1/jobs/{job['id']}").json()
        return status["status"] == "running" and "step" in status["message"] and status

    wait_for(stepping, 180, what="the model to be stepping")
    assert studio.client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 202
    done = studio.wait_done(job["id"], timeout=120)
    assert done["status"] == "canceled" and done["progress"] < 0.9, done


def test_backends_list_the_new_models_per_checkpoint(studio: App) -> None:
    listed = {b["name"]: b for b in studio.client.get("/api/v1/backends").json()["backends"]}
    assert listed["ltx-2"]["available"] and listed["hunyuanvideo"]["available"]
    sound = next(p for p in listed["ltx-2"]["params"] if p["name"] == "sound")
    assert sound["default"] is True
    enhance = next(p for p in listed["ltx-2"]["params"] if p["name"] == "enhance_prompt")
    assert enhance["default"] is False


def test_ltx2_prompt_enhancement_is_off_unless_asked_and_says_when_it_cannot(studio: App) -> None:
    answer = studio.submit(**tiny_job("ltx-2", prompt="a cat", enhance_prompt=True))
    status = studio.wait_done(answer.json()["id"], timeout=120)
    assert status["status"] == "failed" and "no prompt enhancer" in status["error"], status
