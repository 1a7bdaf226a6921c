"""The page in a real browser (Debian's chromium via Playwright), on a phone-sized screen; the main
flows on a desktop screen too."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import App, open_and_type_number, start_app, type_number, wait_for

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("page", ["phone", "desktop"], indirect=True)
def test_prompt_to_video_to_gallery_and_back(app: App, page: Page, tmp_path) -> None:
    prompt = "A paper boat <b>drifting</b> down a rainy street"
    page.goto(app.url)
    page.locator("#prompt textarea").fill(prompt)
    page.locator("#submit").click()

    job = page.locator("#jobs li.dailies-job").first
    expect(job).to_have_attribute("data-status", "succeeded", timeout=30_000)
    # The card holds its own player (a video that has loaded frames), download and share page.
    player = job.locator("video.dailies-job-video")
    expect(player).to_have_attribute("src", re.compile(r".+\.mp4"))
    player.evaluate("v => new Promise(done => v.readyState >= 2 ? done() : v.addEventListener('loadeddata', done))")
    expect(job.get_by_role("link", name="Download")).to_have_attribute("download", re.compile(r"\.mp4$"))
    status = job.locator(".dailies-job-status")
    expect(status).to_contain_text(re.compile(r"rendered in [0-9.]+ s, waited [0-9.]+ s in the queue · seed \d+"))
    seed_used = re.search(r"seed (\d+)", status.inner_text()).group(1)
    # The prompt is shown as text, not markup.
    expect(job.locator(".dailies-job-prompt")).to_have_text(prompt)
    job_id = job.get_attribute("data-id")
    # Share copies the share page's absolute address (a phone would open its share sheet instead).
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    job.get_by_role("button", name="Share").click()
    expect(job.get_by_role("button", name="Link copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == f"{app.url}/g/{job_id}"

    job.get_by_role("button", name="Again").click()  # the same recipe, seed included, as a new job
    again = page.locator("#jobs li.dailies-job").first
    expect(again).not_to_have_attribute("data-id", job_id)
    again_id = again.get_attribute("data-id")
    assert app.wait_done(again_id)["request"]["seed"] == int(seed_used)

    page.reload()  # the visitor's jobs survive a reload
    expect(page.locator(f'#jobs li.dailies-job[data-id="{job_id}"]')).to_have_attribute("data-status", "succeeded")

    page.get_by_role("tab", name="Gallery").click()
    thumbnail = page.locator("#gallery-grid img").first
    expect(thumbnail).to_be_visible()
    thumbnail.click()
    expect(page.locator("#detail-prompt textarea")).to_have_value(prompt)
    expect(page.locator("#detail-video video")).to_have_attribute("src", re.compile(r".+\.mp4"))
    expect(page.locator("#detail-recipe")).to_contain_text(seed_used)

    page.locator("#reuse").click()
    expect(page.locator("#prompt textarea")).to_have_value(prompt)
    expect(page.locator("#random-seed input")).not_to_be_checked()
    expect(page.locator("#seed input")).to_have_value(seed_used)
    page.screenshot(path=str(tmp_path / "reused.png"), full_page=True)


def test_share_link_opens_the_detail(app: App, page: Page) -> None:
    job = app.submit(prompt="a shared lantern festival", backend="preview", seed=5, num_frames=4).json()
    app.wait_done(job["id"])
    page.goto(f"{app.url}/?g={job['id']}")
    expect(page.locator("#detail-prompt textarea")).to_have_value("a shared lantern festival")
    expect(page.locator("#detail-recipe")).to_contain_text(job["id"])


def test_on_a_phone_generate_and_the_new_job_card_are_in_view(app: App, page: Page) -> None:
    page.goto(app.url)
    submit = page.locator("#submit")
    expect(submit).to_be_enabled()
    expect(submit).to_be_in_viewport(ratio=1)  # on load, without scrolling
    # Only backends that can run are offered; the others are listed with a reason for visitors.
    page.locator("#backend input").click()
    expect(page.get_by_role("option")).to_have_text([re.compile("Preview")])
    page.keyboard.press("Escape")
    unavailable = page.locator("#backend-unavailable")
    unavailable.get_by_text("Not running here now").click()
    expect(unavailable.locator('li[data-backend="ltx-video"]')).to_contain_text("Needs a GPU machine")
    expect(unavailable).not_to_contain_text("pip install")
    expect(unavailable).not_to_contain_text("DAILIES_DEVICE")

    page.locator("#examples").get_by_text("A red fox trotting through fresh snow, slow motion").click()
    expect(page.locator("#prompt textarea")).to_have_value("A red fox trotting through fresh snow, slow motion")
    page.locator("#prompt textarea").fill("a kite over the dunes")
    submit.click()
    card = page.locator("#jobs li.dailies-job").first
    expect(card).to_contain_text("a kite over the dunes")
    expect(card).to_be_in_viewport()
    expect(card).to_have_attribute("data-status", "succeeded")
    expect(card).to_be_in_viewport()

    # The form follows the backend: aspect presets snapped to its size rule, its duration range.
    page.get_by_text("Settings", exact=True).click()
    page.locator("#aspect").get_by_label("16:9").check()
    expect(page.locator("#width input[type=number]")).to_have_value("336")
    expect(page.locator("#height input[type=number]")).to_have_value("192")
    expect(page.locator("#duration input[type=range]")).to_have_attribute("max", "8")
    expect(page.locator("#seed input")).to_be_hidden()  # no empty box reading as seed 0 while random
    page.locator("#random-seed input").uncheck()
    expect(page.locator("#seed input")).not_to_have_value(re.compile("^0?$"))  # a seed to keep, not 0


def test_refused_submission_shows_the_reason(app: App, page: Page) -> None:
    page.goto(app.url)
    page.locator("#submit").click()  # empty prompt
    expect(page.locator("#submit-error")).to_contain_text("prompt")
    expect(page.locator("#jobs li.dailies-job")).to_have_count(0)


def test_cancel_advanced_settings_and_gallery_paging(processes, tmp_path, redis_url: str, page: Page) -> None:
    slow = processes.worker(redis_url, DAILIES_PREVIEW_PACE="20")
    app = start_app(processes, tmp_path, redis_url, DAILIES_USER_MAX_ACTIVE="100", DAILIES_USER_MAX_PER_HOUR="1000")
    page.goto(app.url)
    page.locator("#prompt textarea").fill("a slow sunrise")
    page.get_by_text("Settings", exact=True).click()
    type_number(page, "param-waves", "5")
    page.locator("#submit").click()
    job = page.locator("#jobs li.dailies-job").first
    expect(job).to_have_attribute("data-status", "running")
    expect(job.locator(".dailies-job-status")).to_contain_text("left")  # elapsed time and ETA
    status = app.client.get(f"/api/v1/jobs/{job.get_attribute('data-id')}").json()
    assert status["request"]["params"]["waves"] == 5
    job.get_by_role("button", name="Cancel").click()
    expect(job).to_have_attribute("data-status", "canceled")

    # 26 generations: the gallery shows 24, then the rest one page older.
    slow.stop()
    processes.worker(redis_url)
    for i in range(26):
        app.client.post(
            "/api/v1/jobs",
            json={"prompt": f"page {i}", "backend": "preview", "num_frames": 1, "width": 64, "height": 64},
        )
    wait_for(
        lambda: len(app.client.get("/api/v1/generations", params={"limit": 30}).json()["items"]) == 26,
        60,
        what="26 generations",
    )
    page.get_by_role("tab", name="Gallery").click()
    prompts = page.locator("#gallery-grid .dailies-card-prompt")
    expect(page.locator("#gallery-grid img")).to_have_count(24)
    expect(prompts.first).to_have_text("page 25")
    expect(page.locator("#gallery-page")).to_have_text("Page 1")
    page.locator("#gallery-next").click()
    expect(prompts).to_have_text(["page 1", "page 0"])
    expect(page.locator("#gallery-page")).to_have_text("Page 2")
    expect(page.locator("#gallery-next")).to_be_disabled()
    expect(page.locator("#gallery-grid")).to_be_in_viewport()  # the new page from its top
    page.locator("#gallery-prev").click()
    expect(page.locator("#gallery-grid img")).to_have_count(24)
    expect(page.locator("#gallery-prev")).to_be_disabled()

    # Oldest first: the same walk the other way.
    page.locator("#gallery-order input").click()
    page.get_by_role("option", name="Oldest first").click()
    expect(prompts.first).to_have_text("page 0")
    expect(page.locator("#gallery-page")).to_have_text("Page 1")
    page.locator("#gallery-next").click()
    expect(prompts).to_have_text(["page 24", "page 25"])


@pytest.mark.parametrize("page", ["phone", "desktop"], indirect=True)
def test_use_these_settings_and_try_on_another_backend(processes, tmp_path, redis_url: str, page: Page) -> None:
    # A second usable backend to switch to: a worker serving CogVideoX on the CPU (no job runs on it).
    processes.worker(redis_url, backends="preview,cogvideox", DAILIES_DEVICE="cpu")
    app = start_app(processes, tmp_path, redis_url)
    job = app.submit(prompt="five slow waves", backend="preview", seed=9, num_frames=4, waves=5).json()
    app.wait_done(job["id"])
    page.goto(app.url)
    page.locator("#backend input").click()  # another backend first, so "Use these settings" changes it back
    page.get_by_role("option", name=re.compile("^CogVideoX")).click()
    expect(page.locator("#backend input")).to_have_value(re.compile("^CogVideoX"))

    page.get_by_role("tab", name="Gallery").click()
    page.locator("#gallery-grid img").first.click()
    expect(page.locator("#detail-prompt textarea")).to_have_value("five slow waves")
    page.locator("#reuse").click()
    expect(page.locator("#backend input")).to_have_value(re.compile("^Preview"))
    page.get_by_text("Settings", exact=True).click()
    expect(page.locator("#param-waves input[type=number]")).to_have_value("5")
    page.locator("#submit").click()

    reused = page.locator("#jobs li.dailies-job").first
    expect(reused).to_have_attribute("data-id", re.compile(".+"))
    status = app.client.get(f"/api/v1/jobs/{reused.get_attribute('data-id')}").json()
    assert (status["request"]["params"]["waves"], status["request"]["seed"]) == (5, 9)

    # A job card's "Use these settings" fills the form the same way, and brings it into view.
    expect(reused).to_have_attribute("data-status", "succeeded")
    page.locator("#backend input").click()
    page.get_by_role("option", name=re.compile("^CogVideoX")).click()
    expect(page.get_by_label("Steps")).to_be_attached()  # its own parameters are drawn
    page.locator("#prompt textarea").fill("something else")
    reused.get_by_role("button", name="Use these settings").click()
    expect(page.locator("#backend input")).to_have_value(re.compile("^Preview"))
    expect(page.locator("#prompt textarea")).to_have_value("five slow waves")
    expect(page.locator("#prompt")).to_be_in_viewport()
    expect(page.locator("#param-waves input[type=number]")).to_have_value("5")
    expect(page.locator("#seed input")).to_have_value("9")

    # "Try on another backend" from the gallery: the prompt and seed on CogVideoX, sized to its rules.
    page.get_by_role("tab", name="Gallery").click()
    page.locator("#gallery-grid img").first.click()
    page.locator("#elsewhere").click()
    expect(page.locator("#backend input")).to_have_value(re.compile("^CogVideoX"))
    expect(page.locator("#prompt textarea")).to_have_value("five slow waves")
    expect(page.locator("#seed input")).to_have_value("9")
    # Its optional numbers start empty (the model's own), not 0; one typed in is sent as a number.
    expect(page.get_by_label("Guidance")).to_have_value("")
    page.get_by_label("Steps").fill("12")
    page.locator("#submit").click()
    expect(page.locator("#submit-error")).to_have_text("")
    tried = page.locator("#jobs li.dailies-job").first
    expect(tried.locator(".dailies-job-backend")).to_have_text("CogVideoX")
    request = app.client.get(f"/api/v1/jobs/{tried.get_attribute('data-id')}").json()["request"]
    assert (request["backend"], request["prompt"], request["seed"]) == ("cogvideox", "five slow waves", 9)
    assert request["params"]["steps"] == 12 and request["params"].get("guidance") is None
    app.client.post(f"/api/v1/jobs/{request['id']}/cancel")

    # The share page's "Try on another backend" link does the same on a fresh page.
    page.goto(f"{app.url}/?try={job['id']}")
    expect(page.locator("#backend input")).to_have_value(re.compile("^CogVideoX"))
    expect(page.locator("#prompt textarea")).to_have_value("five slow waves")


def test_gallery_on_a_phone_two_columns_readable_recipe_copy_link_and_honest_empty_search(app: App, page: Page) -> None:
    ids = [
        app.submit(prompt=f"a gull number {i}", backend="preview", seed=i, num_frames=4).json()["id"] for i in range(3)
    ]
    for job_id in ids:
        app.wait_done(job_id)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(app.url)
    page.get_by_role("tab", name="Gallery").click()
    cards = page.locator("#gallery-grid .dailies-card")
    expect(cards).to_have_count(3)
    boxes = [cards.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"]  # two across
    assert boxes[2]["y"] > boxes[0]["y"] and boxes[2]["x"] == boxes[0]["x"]
    expect(cards.first.locator(".dailies-card-prompt")).to_have_text("a gull number 2")  # one caption
    expect(cards.first.locator(".dailies-card-meta")).to_have_text("Preview · just now")

    cards.first.click()
    expect(page.locator("#reuse")).to_be_visible()
    expect(page.locator("#elsewhere")).to_be_hidden()  # the preview is the only backend running here
    share = page.locator("#detail-share")
    expect(share.locator(".dailies-recipe")).to_contain_text("Seed2")
    share.get_by_role("button", name="Copy link").click()
    expect(share.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == f"{app.url}/g/{ids[2]}"
    # The recipe copies as the API request that makes the same video again.
    share.get_by_role("button", name="Copy recipe").click()
    expect(share.get_by_role("button", name="Copied")).to_have_count(2)
    recipe = json.loads(page.evaluate("navigator.clipboard.readText()"))
    again = app.wait_done(app.submit(**recipe).json()["id"])["request"]
    first = app.client.get(f"/api/v1/jobs/{ids[2]}").json()["request"]
    assert {**again, "id": ""} == {**first, "id": ""}
    assert share.get_by_role("link", name="Recipe (JSON)").get_attribute("download") == f"dailies-{ids[2]}.json"

    page.locator("#gallery-search textarea, #gallery-search input").first.fill("zebra")
    page.locator("#gallery-search-button").click()
    expect(page.locator("#gallery-grid")).to_have_text("Nothing matches this search.")


def test_the_detail_player_waits_for_a_tap_when_the_visitor_asks_for_less_motion(app: App, browser: Browser) -> None:
    job = app.submit(prompt="a calm pond", backend="preview", seed=4, num_frames=24).json()
    app.wait_done(job["id"])
    context = browser.new_context(viewport={"width": 390, "height": 844}, reduced_motion="reduce")
    page = context.new_page()
    page.goto(f"{app.url}/?g={job['id']}")
    player = page.locator("#detail-video video")
    expect(player).to_have_attribute("src", re.compile(r"\.mp4$"))
    player.evaluate("v => new Promise(done => v.readyState >= 2 ? done() : v.addEventListener('loadeddata', done))")
    page.wait_for_timeout(500)
    assert player.evaluate("v => v.paused && v.currentTime === 0")
    context.close()


@pytest.mark.parametrize("page", ["phone", "desktop"], indirect=True)
def test_the_form_follows_the_chosen_backend_and_checkpoint(processes, tmp_path, redis_url: str, page: Page) -> None:
    processes.worker(redis_url, backends="preview,cogvideox", DAILIES_DEVICE="cpu")
    app = start_app(processes, tmp_path, redis_url)
    page.goto(app.url)
    page.get_by_text("Settings", exact=True).click()
    duration, longest = page.locator("#duration"), page.locator("#duration input[type=range]")

    # The preview takes 4-24 fps: a choice, and the longest clip (96 frames) follows it.
    expect(duration).to_contain_text("at 12 fps")
    expect(longest).to_have_attribute("max", "8")
    type_number(page, "fps", "24")
    expect(duration).to_contain_text("at 24 fps")
    expect(longest).to_have_attribute("max", "4")
    page.locator("#prompt textarea").fill("a quick clip")
    page.locator("#submit").click()
    card = page.locator("#jobs li.dailies-job").first
    expect(card).to_have_attribute("data-id", re.compile(".+"))
    assert app.client.get(f"/api/v1/jobs/{card.get_attribute('data-id')}").json()["request"]["fps"] == 24

    # CogVideoX runs at its own 8 fps (no choice), 720 px at most, and the 5B takes a start image.
    page.locator("#backend input").click()
    page.get_by_role("option", name=re.compile("^CogVideoX")).click()
    expect(duration).to_contain_text("at 8 fps")
    expect(page.locator("#fps")).to_be_hidden()
    expect(longest).to_have_attribute("max", "6.12")
    expect(page.locator("#width input[type=range]")).to_have_attribute("max", "720")
    expect(page.locator("#start-image")).to_be_visible()
    # The 2B has no image-to-video; the 1.5 5B makes 81 or 161 frames at 16 fps, up to 1360 px.
    for model, fps, shortest, widest, image in (("2b", 8, "1.12", "720", False), ("1.5-5b", 16, "5.06", "1360", True)):
        page.locator("#param-model input").click()
        page.get_by_role("option", name=model, exact=True).click()
        expect(duration).to_contain_text(f"at {fps} fps")
        expect(page.locator("#duration input[type=range]")).to_have_attribute("min", shortest)
        expect(page.locator("#width input[type=range]")).to_have_attribute("max", widest)
        expect(page.locator("#start-image")).to_be_visible() if image else expect(
            page.locator("#start-image")
        ).to_be_hidden()


# Twenty sizes the preview takes (multiples of 16, 64-512), none its default 256, so a size put
# back to the one it was drawn with shows.
TYPED_SIZES = [320, 192, 448, 128, 384, 96, 480, 160, 512, 224, 288, 64, 352, 176, 416, 112, 464, 208, 336, 144]


def test_sizes_typed_in_a_row_hold_and_are_what_generate_sends_on_a_busy_app(
    processes, tmp_path, redis_url: str, page: Page
) -> None:
    """Issue 19: a size typed into the Settings fold is the size the job gets, even one typed the
    moment the fold is first opened, on a busy app (a worker running jobs, a process burning a
    core). Twenty sizes, width and height in turn, in four fresh pages whose first size is typed
    as the fold is drawn; each is held, and Generate sends the last width and height typed."""
    processes.worker(redis_url, DAILIES_PREVIEW_PACE="10")
    app = start_app(processes, tmp_path, redis_url, DAILIES_USER_MAX_ACTIVE="100", DAILIES_USER_MAX_PER_HOUR="1000")
    for i in range(3):  # the worker stays busy throughout
        assert app.submit(prompt=f"busy {i}", backend="preview", num_frames=48).status_code == 202
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    sizes = iter(TYPED_SIZES)
    try:
        for fresh in range(4):
            page.goto(app.url)
            expect(page.locator("#submit")).to_be_enabled()
            typed = {}
            for i in range(5):
                box = ("width", "height")[(5 * fresh + i) % 2]
                typed[box] = str(next(sizes))
                if i == 0:
                    open_and_type_number(page, page.get_by_text("Settings", exact=True), box, typed[box])
                else:
                    type_number(page, box, typed[box])
            page.locator("#prompt textarea").fill(f"typed sizes {fresh}")
            page.locator("#submit").click()
            card = page.locator("#jobs li.dailies-job").first
            expect(card).to_contain_text(f"typed sizes {fresh}")
            request = app.client.get(f"/api/v1/jobs/{card.get_attribute('data-id')}").json()["request"]
            assert (request["width"], request["height"]) == (int(typed["width"]), int(typed["height"]))
        page.locator("#settings").screenshot(path=str(tmp_path / "typed-sizes.png"))
    finally:
        burner.kill()
        burner.wait()
