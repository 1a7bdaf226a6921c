"""Video with sound through the whole path: the preview's seeded tune, a hosted provider's sound
track, the dataset's `has_audio` column, the Hub stand-in, and the page's sound mark and unmute."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from redis import Redis

from dailies.contract.media import probe_mp4
from tests.conftest import App, Processes, start_app, wait_for
from tests.hosted_servers import HostedServer, worker_env
from tests.hub_server import HubServer
from tests.sound_checks import assert_video_with_sound, decoded_audio

REPO = "user/dailies-sound"


def run(app: App, prompt: str = "a drum in the rain", **body) -> dict:
    answer = app.submit(backend="preview", prompt=prompt, width=64, height=64, **body)
    assert answer.status_code == 202, answer.text
    status = app.wait_done(answer.json()["id"])
    assert status["status"] == "succeeded", status
    return status["result"]


def stored_rows(app: App) -> dict[str, dict]:
    folders = (app.data / "dataset" / "data").glob("*/*/metadata.jsonl")
    return {row["id"]: row for path in folders for row in map(json.loads, path.read_text().splitlines())}


def test_preview_with_sound_through_the_app(shared_app: App) -> None:
    result = run(shared_app, num_frames=18, fps=12, seed=4, sound=True)
    video = shared_app.client.get(result["video_url"]).content
    info = assert_video_with_sound(video)
    assert (info.num_frames, info.fps, info.audio.channels) == (18, 12.0, 1)
    assert result["has_audio"] is True
    generation = shared_app.client.get(f"/api/v1/generations/{result['generation_id']}").json()
    assert generation["has_audio"] is True and generation["params"]["sound"] is True
    assert stored_rows(shared_app)[result["generation_id"]]["has_audio"] is True


def test_the_tune_is_drawn_from_the_seed_and_leaves_the_picture_alone(shared_app: App) -> None:
    a, again, other = (run(shared_app, num_frames=12, seed=seed, sound=True) for seed in (8, 8, 9))
    quiet = run(shared_app, num_frames=12, seed=8)
    sound = [decoded_audio(shared_app.client.get(r["video_url"]).content) for r in (a, again, other)]
    assert np.array_equal(sound[0], sound[1]) and not np.array_equal(sound[0], sound[2])
    # Same seed with sound off: the same picture (the middle frame is the poster), and no track.
    assert shared_app.client.get(quiet["poster_url"]).content == shared_app.client.get(a["poster_url"]).content
    assert probe_mp4(shared_app.client.get(quiet["video_url"]).content).audio is None
    assert quiet["has_audio"] is False and stored_rows(shared_app)[quiet["generation_id"]]["has_audio"] is False


def test_sound_must_be_true_or_false(shared_app: App) -> None:
    answer = shared_app.submit(backend="preview", prompt="x", sound="loud")
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "sound"


def test_backends_list_the_preview_sound_switch(shared_app: App) -> None:
    preview = next(b for b in shared_app.client.get("/api/v1/backends").json()["backends"] if b["name"] == "preview")
    sound = next(p for p in preview["params"] if p["name"] == "sound")
    assert (sound["type"], sound["default"]) == ("bool", False)


def own_database(redis_server: str, number: int) -> str:
    """A Redis database of its own, so the module's shared app cannot collect these jobs."""
    url = f"{redis_server.rsplit('/', 1)[0]}/{number}"
    Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.mark.hub
def test_has_audio_reaches_the_hub_with_the_sound_track(
    hub: HubServer, processes: Processes, tmp_path: Path, redis_server: str
) -> None:
    redis_url = own_database(redis_server, 1)
    processes.worker(redis_url)
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token, "HF_DATASET_REPO": REPO, "DAILIES_COMMIT_EVERY": "0.2"}
    app = start_app(processes, tmp_path, redis_url, **env)
    loud, quiet = run(app, num_frames=12, seed=2, sound=True), run(app, num_frames=12, seed=2)
    rows = wait_for(lambda: len(hub.metadata_rows(REPO)) == 2 and hub.metadata_rows(REPO), 60, what="the Hub rows")
    by_id = {r["id"]: r for r in rows}
    assert by_id[loud["generation_id"]]["has_audio"] is True and by_id[quiet["generation_id"]]["has_audio"] is False
    files = hub.files(REPO)
    video = next(content for path, content in files.items() if path.endswith(f"{loud['generation_id']}.mp4"))
    assert_video_with_sound(video)


@pytest.fixture
def provider() -> Iterator[HostedServer]:
    with HostedServer() as running:
        yield running


@pytest.mark.hosted
def test_a_hosted_providers_sound_track_is_kept(
    provider: HostedServer, processes: Processes, tmp_path: Path, redis_server: str
) -> None:
    redis_url = own_database(redis_server, 2)
    processes.worker(redis_url, "fal", **worker_env(provider))
    app = start_app(processes, tmp_path, redis_url)
    provider.script.video = "sound"
    answer = app.submit(backend="fal", prompt="a heron calls at dawn")
    assert answer.status_code == 202, answer.text
    done = app.wait_done(answer.json()["id"], timeout=60)
    assert done["status"] == "succeeded", done
    video = app.client.get(done["result"]["video_url"]).content
    assert video == provider.mp4_with_sound  # kept byte for byte, sound and all
    assert_video_with_sound(video)
    assert done["result"]["has_audio"] is True


@pytest.mark.browser
def test_gallery_marks_sound_and_the_player_starts_muted_with_an_unmute_button(
    browser, processes: Processes, tmp_path: Path, redis_server: str
) -> None:
    redis_url = own_database(redis_server, 4)
    processes.worker(redis_url)
    app = start_app(processes, tmp_path, redis_url)
    quiet = run(app, prompt="a silent lake", num_frames=12, seed=6)
    loud = run(app, prompt="a drum in the rain", num_frames=12, seed=6, sound=True)

    page = browser.new_page()
    page.goto(app.url)
    page.get_by_role("tab", name="Gallery").click()
    cards = page.locator("#gallery-grid .dailies-card")
    cards.first.wait_for()
    marked = page.locator("#gallery-grid .dailies-card:has(.dailies-card-sound)")
    assert [marked.nth(i).get_attribute("data-id") for i in range(marked.count())] == [loud["generation_id"]]
    assert cards.count() == 2 and "sound" in marked.first.inner_text()

    marked.first.click()
    video = page.locator("#detail-video video")
    video.wait_for()
    assert video.evaluate("v => v.muted") is True
    unmute = page.locator("#detail-video .dailies-unmute")
    assert unmute.is_visible() and unmute.inner_text() == "🔇 Unmute"
    unmute.click()
    assert video.evaluate("v => v.muted") is False and unmute.inner_text() == "🔊 Mute"

    page.locator(f'#gallery-grid .dailies-card[data-id="{quiet["generation_id"]}"]').click()
    wait_for(lambda: page.locator("#detail-prompt textarea").input_value() == "a silent lake", 15, what="the detail")
    player = page.locator("#detail-video video")
    wait_for(lambda: player.get_attribute("src").endswith(f"{quiet['generation_id']}.mp4"), 15, what="the next video")
    wait_for(lambda: player.evaluate("v => v.muted"), 15, what="the next video to start muted")
    assert page.locator("#detail-video .dailies-unmute").count() == 0  # no sound, nothing to unmute
