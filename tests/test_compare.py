"""Comparisons: one prompt sent to `preview` and two open models (tiny checkpoints on the CPU),
the group API, the dataset's group column, and the share pages in a real browser."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from redis import Redis

from dailies.contract.media import first_frame
from tests.conftest import App, Processes, choose_seed, start_app, type_number
from tests.tiny_pipelines import save_tiny

pytest.importorskip("diffusers", reason="model dependencies are not installed (requirements-models.txt)")
pytestmark = [pytest.mark.models, pytest.mark.browser]

TRIO = ["preview", "ltx-video", "wan"]
PROMPT = 'a red boat <img src=x onerror="alert(1)"> & the sea'


SITE = "https://dailies.example"


@pytest.fixture(scope="module")
def studio(module_redis: str, module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> App:
    """The app plus one CPU worker serving preview and tiny LTX-Video and Wan checkpoints."""
    folder = tmp_path_factory.mktemp("tiny-models")
    module_processes.worker(
        module_redis,
        backends=",".join(TRIO),
        DAILIES_DEVICE="cpu",
        DAILIES_MODEL_LTX_VIDEO=str(save_tiny("ltx-video", folder)),
        DAILIES_MODEL_WAN=str(save_tiny("wan", folder)),
    )
    return start_app(
        module_processes,
        module_processes.tmp_path,
        module_redis,
        DAILIES_USER_MAX_ACTIVE="50",
        DAILIES_USER_MAX_PER_HOUR="1000",
        DAILIES_PUBLIC_URL=SITE,  # as SPACE_HOST on Spaces: share links use it, never the request's Host
    )


@pytest.fixture(scope="module")
def group(studio: App) -> dict:
    """A finished comparison of the three backends: 1 s, 64x64 (asked 70 wide), seed 7, 2 steps."""
    body = {
        "prompt": PROMPT,
        "backends": TRIO,
        "seed": 7,
        "width": 70,
        "height": 64,
        "duration_s": 1.0,
        "steps": 2,
        "negative_prompt": "blurry",
    }
    answer = studio.client.post("/api/v1/jobs", json=body)
    assert answer.status_code == 202, answer.text
    submitted = answer.json()
    assert [j["backend"] for j in submitted["jobs"]] == TRIO
    for job in submitted["jobs"]:
        assert studio.wait_done(job["id"], timeout=180)["status"] == "succeeded"
    return studio.client.get(f"/api/v1/groups/{submitted['group']}").json()


def test_a_group_is_one_job_per_backend_snapped_to_its_rules(studio: App, group: dict) -> None:
    assert group["status"] == "finished" and group["prompt"] == PROMPT
    requests = {j["backend"]: j["request"] for j in group["jobs"]}
    # 1 s at each one's fps, on each one's frame rule; 70 px wide snapped to /16 or /32.
    shape = {n: (r["width"], r["height"], r["num_frames"], r["fps"]) for n, r in requests.items()}
    assert shape == {"preview": (64, 64, 12, 12), "ltx-video": (64, 64, 25, 24), "wan": (64, 64, 17, 16)}
    assert all(r["seed"] == 7 and r["prompt"] == PROMPT and r["group"] == group["id"] for r in requests.values())
    # Fields a backend does not take are left out for it, not refused.
    assert requests["preview"]["negative_prompt"] == "" and requests["wan"]["negative_prompt"] == "blurry"
    assert "steps" not in requests["preview"]["params"] and requests["ltx-video"]["params"]["steps"] == 2
    for job in group["jobs"]:
        g = job["generation"]
        assert g["group"] == group["id"] and g["id"] == job["id"]
        assert studio.client.get(g["video_url"]).headers["content-type"] == "video/mp4"
    # The dataset keeps the group in every row of the comparison.
    rows = [json.loads(line) for p in (studio.data / "dataset").rglob("metadata.jsonl") for line in p.open()]
    assert sorted(r["id"] for r in rows if r["group"] == group["id"]) == sorted(j["id"] for j in group["jobs"])


def test_a_refused_group_queues_nothing(studio: App) -> None:
    redis = Redis.from_url(studio.redis_url)
    before = set(redis.keys("dailies:group:*")), {n: redis.llen(f"rq:queue:dailies:{n}") for n in TRIO}
    base = {"prompt": "a dog", "duration_s": 1.0}
    cases = [
        ({**base, "backends": ["preview", "no-such"]}, 422, "backends"),
        ({**base, "backends": ["preview"]}, 422, "backends"),
        ({**base, "backends": ["preview", "preview"]}, 422, "backends"),
        ({**base, "backends": "preview"}, 422, "backends"),
        ({**base, "backends": ["preview", "wan"], "backend": "wan"}, 422, "backend"),
        ({**base, "backends": ["preview", "wan"], "num_frames": 9}, 422, "num_frames"),
        ({**base, "backends": ["preview", "wan"], "image": "aGk="}, 422, "image"),
        ({**base, "backends": ["preview", "wan"], "colour": "red"}, 422, "colour"),
        ({**base, "backends": ["preview", "wan"], "prompt": ""}, 422, "prompt"),
        ({**base, "backends": ["preview", "wan"], "steps": 0}, 422, "steps"),
        ({**base, "backends": ["preview", "mochi"]}, 503, "backend"),  # no worker serves mochi
    ]
    for body, status, field in cases:
        answer = studio.client.post("/api/v1/jobs", json=body)
        assert answer.status_code == status and answer.json()["error"]["field"] == field, (body, answer.text)
    assert (set(redis.keys("dailies:group:*")), {n: redis.llen(f"rq:queue:dailies:{n}") for n in TRIO}) == before
    assert studio.client.get("/api/v1/groups/000000000000000000000000").status_code == 404
    assert studio.client.get("/c/000000000000000000000000").status_code == 404


@contextmanager
def another_site(html: str) -> Iterator[str]:
    """A page of another origin: `html` served at http://localhost:<another port>/."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def _meta(html: str, name: str) -> str:
    found = re.search(rf'<meta (?:property|name)="{re.escape(name)}" content="([^"]*)">', html)
    assert found, name
    return found.group(1)


def test_share_page_unfurls_and_shows_the_prompt_as_text(studio: App, group: dict, page: Page) -> None:
    g = group["jobs"][1]["generation"]
    answer = studio.client.get(f"/g/{g['id']}")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert _meta(html, "og:title") == "a red boat &lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; the sea"
    assert _meta(html, "og:image") == f"{SITE}{g['poster_url']}"
    assert _meta(html, "og:video") == f"{SITE}{g['video_url']}"
    assert _meta(html, "og:video:type") == "video/mp4"
    assert "<img src=x" not in html
    assert studio.client.get(_meta(html, "og:image").removeprefix(SITE)).content[:2] == b"\xff\xd8"
    # The recipe says yes or no (preview's sound switch, off here) and "default" (guidance left empty),
    # not Python's True, False or None.
    preview = studio.client.get(f"/g/{group['jobs'][0]['generation']['id']}").text
    assert "<dt>Sound</dt><dd>no</dd>" in preview and "False" not in preview
    assert "<dt>Guidance</dt><dd>default</dd>" in html and "None" not in html
    # A Twitter player card: the post plays the video through the embeddable player page.
    card = {
        "twitter:card": "player",
        "twitter:player": f"{SITE}/g/{g['id']}/player",
        "twitter:player:width": "64",
        "twitter:player:height": "64",
        "twitter:player:stream": f"{SITE}{g['video_url']}",
        "twitter:player:stream:content_type": "video/mp4",
        "twitter:image": f"{SITE}{g['poster_url']}",
        "twitter:title": _meta(html, "og:title"),
        "og:image:width": "64",
        "og:video:height": "64",
    }
    assert {name: _meta(html, name) for name in card} == card
    # A forged Host or forwarded host changes no address on the page (a link preview cache would keep it).
    forged = {"host": "evil.example", "x-forwarded-proto": "http", "x-forwarded-host": "evil.example"}
    assert studio.client.get(f"/g/{g['id']}", headers=forged).text == html

    page.goto(f"{studio.url}/g/{g['id']}")
    expect(page.locator("h1.share-prompt")).to_have_text(PROMPT)
    assert page.locator("main img").count() == 0  # the markup in the prompt stayed text
    expect(page.locator(".share-recipe")).to_contain_text("LTX-Video")
    expect(page.get_by_role("link", name="Open in Dailies")).to_have_attribute("href", f"/?g={g['id']}")
    # The page opens its form with this recipe on another backend.
    expect(page.get_by_role("link", name="Try on another backend")).to_have_attribute("href", f"/?try={g['id']}")
    expect(page.get_by_role("link", name="See the comparison")).to_have_attribute("href", f"/c/{group['id']}")
    # A video that has loaded frames.
    page.wait_for_function("document.querySelector('video.share-video').readyState >= 2")


def test_the_player_page_is_only_the_video_and_other_sites_may_frame_it(studio: App, group: dict, page: Page) -> None:
    g = group["jobs"][0]["generation"]
    answer = studio.client.get(f"/g/{g['id']}/player")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "x-frame-options" not in answer.headers
    assert answer.headers["content-security-policy"] == "frame-ancestors *"
    html = answer.text
    assert re.findall(r'<video [^>]*src="([^"]*)"', html) == [g["video_url"]]
    assert "<title>a red boat &lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; the sea · Dailies</title>" in html
    assert "<img src=x" not in html and "<header" not in html and "<a " not in html  # no chrome
    for missing in ("000000000000000000000000", "not-an-id"):
        gone = studio.client.get(f"/g/{missing}/player")
        assert gone.status_code == 404 and gone.headers["content-type"].startswith("text/html"), missing

    # Framed by a page of another site (served from another origin on this machine, as Chromium
    # lets only local pages frame local ones): the video fills the frame and plays.
    player = f"{studio.url}/g/{g['id']}/player"
    outer = f'<!doctype html><body style="margin:0"><iframe src="{player}" width="320" height="180" style="border:0">'
    with another_site(outer) as elsewhere:
        page.goto(elsewhere)
        framed = page.locator("iframe").element_handle().content_frame()
        assert framed is not None
        framed.wait_for_function("(v => v && v.readyState >= 2 && !v.paused)(document.querySelector('video'))")
        video = framed.locator("video")
        expect(video).to_have_attribute("src", g["video_url"])
        assert video.evaluate("v => v.muted && v.loop && v.controls && v.playsInline")
        box = video.bounding_box()
        assert box is not None and (box["width"], box["height"]) == (320, 180), box


SYNC = """() => [...document.querySelectorAll('.dailies-compare video')].map(v => ({
    t: v.currentTime, paused: v.paused, ended: v.ended, ready: v.readyState, d: v.duration}))"""


def _playing(players: list[dict]) -> bool:
    """Playing (a shorter one waiting on its last frame for the longest), or all held together at
    the start while a loop's seeks finish."""
    return all(not p["paused"] or p["ended"] for p in players) or all(p["paused"] and p["t"] < 0.1 for p in players)


def _in_sync(players: list[dict]) -> bool:
    # The shortest video waits on its last frame while the longest finishes (at most 0.0625 s here).
    times = [min(p["t"], p["d"]) for p in players]
    return max(times) - min(times) <= 0.1


def _one_row(videos: Locator, viewport_width: int) -> None:
    """The videos side by side in one row of equal columns, all inside the viewport's width."""
    boxes = [videos.nth(i).bounding_box() for i in range(videos.count())]
    assert all(boxes), boxes
    assert max(b["y"] for b in boxes) - min(b["y"] for b in boxes) < 1, boxes
    assert max(b["width"] for b in boxes) - min(b["width"] for b in boxes) < 1, boxes
    assert all(0 <= b["x"] and b["x"] + b["width"] <= viewport_width for b in boxes), boxes


def test_comparison_plays_three_videos_in_sync(studio: App, group: dict, page: Page, tmp_path: Path) -> None:
    html = studio.client.get(f"/c/{group['id']}").text
    assert _meta(html, "og:video").endswith(group["jobs"][0]["generation"]["video_url"])
    page.goto(f"{studio.url}/c/{group['id']}")
    expect(page.locator("h1.share-prompt")).to_have_text(PROMPT)
    names = page.locator(".share-column figcaption strong")
    expect(names).to_have_text(["Preview", "LTX-Video", "Wan"])  # the short names; the note on hover
    expect(names.first).to_have_attribute("title", "Preview (pipeline preview, not a model)")
    expect(page.locator(".share-column figcaption").nth(1)).to_contain_text("rendered in")
    videos = page.locator(".dailies-compare video")
    expect(videos).to_have_count(3)
    _one_row(videos, 390)
    # They start by themselves, together, and stay together over several loops.
    page.wait_for_function(f"({SYNC})().every(p => p.ready >= 2 && !p.paused && p.t > 0.2)")
    for _ in range(20):
        players = page.evaluate(SYNC)
        # Playing, or a shorter one waiting on its last frame for the longest.
        assert _playing(players) and _in_sync(players), players
        page.wait_for_timeout(150)

    play = page.locator(".dailies-compare-play")
    play.click()  # one pause for all
    expect(play).to_have_text("Play")
    players = page.evaluate(SYNC)
    assert all(p["paused"] for p in players) and _in_sync(players), players
    page.locator(".dailies-compare-scrub").fill("0.5")  # one scrub for all
    page.wait_for_function(f"({SYNC})().every(p => Math.abs(p.t - 0.5) < 0.02)")
    play.click()
    page.wait_for_function(f"({SYNC})().every(p => !p.paused && p.t > 0.6)")
    assert _in_sync(page.evaluate(SYNC))
    page.screenshot(path=str(tmp_path / "compare.png"))


def test_comparison_waits_for_a_tap_when_the_visitor_asks_for_less_motion(
    studio: App, group: dict, browser: Browser
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, reduced_motion="reduce")
    page = context.new_page()
    page.goto(f"{studio.url}/c/{group['id']}")
    page.wait_for_function(f"({SYNC})().every(p => p.ready >= 2)")
    page.wait_for_timeout(500)
    assert all(p["paused"] and p["t"] == 0 for p in page.evaluate(SYNC))
    page.locator(".dailies-compare-play").click()
    page.wait_for_function(f"({SYNC})().every(p => !p.paused && p.t > 0.2)")
    context.close()


@pytest.mark.parametrize("page", ["phone", "desktop"], indirect=True)
def test_compare_view_in_the_page_opens_by_link_and_plays_in_sync(studio: App, group: dict, page: Page) -> None:
    page.goto(f"{studio.url}/?c={group['id']}")
    block = page.locator("#compare-view .dailies-compare")
    expect(block.locator("video")).to_have_count(3)
    expect(block).to_be_in_viewport()  # on a phone the link brings the comparison up
    _one_row(block.locator("video"), page.viewport_size["width"])  # in the page's narrower column too
    expect(block.locator(".share-column figcaption strong")).to_have_text(["Preview", "LTX-Video", "Wan"])
    expect(page.locator("#compare-view .dailies-compare-prompt")).to_have_text(PROMPT)
    in_page = SYNC.replace(".dailies-compare video", "#compare-view .dailies-compare video")
    page.wait_for_function(f"({in_page})().every(p => p.ready >= 2 && !p.paused && p.t > 0.2)")
    for _ in range(10):
        players = page.evaluate(in_page)
        assert _playing(players) and _in_sync(players), players
        page.wait_for_timeout(150)
    block.locator(".dailies-compare-play").click()
    expect(block.locator(".dailies-compare-play")).to_have_text("Play")
    assert all(p["paused"] for p in page.evaluate(in_page))


def test_a_comparison_submitted_from_the_page_shows_each_backend_then_the_videos(studio: App, page: Page) -> None:
    page.goto(studio.url)
    page.locator("#prompt textarea").fill("a blue boat at night")
    page.get_by_text("Settings", exact=True).click()
    for name, value in (("width", "64"), ("height", "64"), ("duration", "1")):
        type_number(page, name, value)
    page.get_by_text("Compare side by side").click()
    for label in ("Preview (pipeline preview, not a model)", "Wan"):
        page.locator("#compare-on").get_by_label(label).check()
    page.locator("#submit").click()
    block = page.locator("#compare-view .dailies-compare")
    expect(block).to_be_in_viewport()
    expect(block.locator(".share-column figcaption strong")).to_have_text(["Preview", "Wan"])
    expect(block.locator("video")).to_have_count(2, timeout=120_000)
    group_id = block.get_attribute("data-group")
    jobs = studio.client.get(f"/api/v1/groups/{group_id}").json()["jobs"]
    shape = [(j["backend"], j["request"]["width"], j["request"]["num_frames"]) for j in jobs]
    assert shape == [("preview", 64, 12), ("wan", 64, 17)]


def test_the_form_offers_a_start_image_where_the_backend_does_image_to_video(
    studio: App, page: Page, tmp_path: Path
) -> None:
    from PIL import Image

    picture = tmp_path / "start.png"
    Image.new("RGB", (96, 80), (200, 30, 30)).save(picture)
    page.goto(studio.url)
    page.get_by_text("Settings", exact=True).click()
    expect(page.locator("#start-image")).to_be_hidden()  # preview: text only
    page.locator("#backend input").click()
    page.get_by_role("option", name=re.compile("^LTX-Video")).click()
    expect(page.locator("#start-image")).to_be_visible()
    page.locator("#start-image input[type=file]").set_input_files(str(picture))
    expect(page.locator("#start-image img")).to_be_visible()
    for name, value in (("width", "64"), ("height", "64"), ("duration", "0.4")):
        type_number(page, name, value)
    choose_seed(page, 3)
    page.locator("#prompt textarea").fill("a cat walks")
    page.locator("#submit").click()
    card = page.locator("#jobs li.dailies-job").first
    expect(card).to_have_attribute("data-status", "succeeded", timeout=120_000)
    with_image = studio.client.get(f"/api/v1/jobs/{card.get_attribute('data-id')}").json()
    assert with_image["request"]["seed"] == 3 and with_image["request"]["num_frames"] == 9
    # The same job without the image starts elsewhere: the upload reached the model.
    answer = studio.submit(prompt="a cat walks", backend="ltx-video", seed=3, width=64, height=64, num_frames=9)
    without = studio.wait_done(answer.json()["id"], timeout=120)
    frames = [first_frame(studio.client.get(j["result"]["video_url"]).content) for j in (with_image, without)]
    assert frames[0].tolist() != frames[1].tolist()


def test_comparison_loops_together_and_pulls_a_drifting_video_back(studio: App, group: dict, page: Page) -> None:
    """Over several loops the longest video restarts all of them together, and a video that runs
    fast (playbackRate 1.6, as a decoder that falls behind or races would) is kept with the others."""
    page.goto(f"{studio.url}/c/{group['id']}")
    page.wait_for_function(f"({SYNC})().every(p => p.ready >= 2 && !p.paused && p.t > 0.1)")
    longest = max(p["d"] for p in page.evaluate(SYNC))
    # A follower (not the longest, whose time is the clock) drifts ahead on its own.
    page.evaluate(
        """() => { const vs = [...document.querySelectorAll('.dailies-compare video')];
        const lead = vs.reduce((a, b) => (b.duration > a.duration ? b : a));
        vs.find(v => v !== lead).playbackRate = 1.6; }"""
    )
    loops, last_lead, samples = 0, 0.0, 0
    deadline = page.evaluate("performance.now()") + 3.5 * longest * 1000
    while page.evaluate("performance.now()") < deadline:
        players = page.evaluate(SYNC)
        lead = max(players, key=lambda p: p["d"])
        loops += lead["t"] < last_lead - 0.2  # the clock went back to the start: one loop
        last_lead = lead["t"]
        assert _in_sync(players), players
        samples += 1
        page.wait_for_timeout(60)
    assert loops >= 2, (loops, samples)
    players = page.evaluate(SYNC)
    assert all(not p["paused"] or p["ended"] for p in players) and any(not p["paused"] for p in players), players
